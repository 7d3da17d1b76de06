"""The human-readable drift report: one self-contained HTML page (inline CSS and SVG, no scripts, no
external assets) so it opens straight from S3 or an email attachment. Standard library only.

Every feature gets a bar chart of baseline vs window bin shares on the baseline's fixed bins; drifted
features come first, then by PSI, so the page starts with what the on-call engineer needs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_BASELINE_COLOUR = "#9aa5b1"
_WINDOW_COLOUR = "#2f6fb0"
_DRIFT_COLOUR = "#c0392b"
_CHART_HEIGHT = 160
_BAR_WIDTH = 14
_GROUP_GAP = 10
_LABEL_SPACE = 70

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2933}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #d9e2ec;padding:.25rem .6rem;text-align:left}
th{background:#f0f4f8} .drifted{color:#c0392b;font-weight:600} .quiet{color:#2e7d32}
section{border-top:1px solid #d9e2ec;padding:1rem 0} .legend span{display:inline-block;margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
svg text{font-size:10px;fill:#52606d}
"""


def render_drift_html(report: Mapping[str, Any], baseline: Mapping[str, Any], *,
                      title: str = "Drift report") -> str:
    """Render a drift report (``DriftReport.to_dict()``) against its baseline as an HTML page."""
    features: Mapping[str, Mapping[str, Any]] = report.get("features", {})
    ordered = sorted(features.items(), key=_priority)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _summary(report, baseline),
        _legend(),
    ]
    for label, key in (("Prediction (positive-class probability)", "prediction"),
                       ("Confidence (max(p, 1 - p))", "confidence")):
        item = report.get(key)
        if isinstance(item, Mapping) and item.get("histogram"):
            parts.append(_section(label, item, anchor=key))
    for position, (name, item) in enumerate(ordered):
        parts.append(_section(name, item, anchor=f"feature-{position}"))
    parts.append("</body></html>")
    return "\n".join(parts)


def _priority(entry: tuple[str, Mapping[str, Any]]) -> tuple[int, float, str]:
    name, item = entry
    psi = item.get("psi")
    return (0 if item.get("drifted") else 1, -(psi if isinstance(psi, int | float) else -1.0), name)


def _summary(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> str:
    drifted = bool(report.get("drifted"))
    verdict = ('<span class="drifted">DRIFT DETECTED</span>' if drifted
               else '<span class="quiet">no drift</span>')
    if not report.get("enough_data", True):
        verdict = "not enough data to decide"
    reasons = report.get("malformed_reasons") or {}
    reason_text = ", ".join(f"{escape(str(k))}: {int(v)}" for k, v in reasons.items()) or "none"
    rows = [
        ("Verdict", verdict),
        ("Rows analysed", _number(report.get("rows"))),
        ("Malformed records", f"{_number(report.get('malformed'))} ({reason_text})"),
        ("Drifted features", f"{_number(report.get('drifted_features'))} "
                             f"(share {_number(report.get('drifted_share'))})"),
        # The verdict's own number, compared with the same threshold the DataDrift alarm uses.
        ("Importance-weighted drift", f"{_number(report.get('weighted_drift_score'))} (alarm at "
                                      f"{_number((report.get('thresholds') or {}).get('weighted_drift'))}; "
                                      f"importances: {escape(str(report.get('importance_source', 'uniform')))})"),
        ("Data-quality violations", f"{_number(report.get('data_quality_violations'))} "
                                    f"({escape(', '.join(report.get('data_quality_features') or [])) or 'none'}; "
                                    f"in top features: {_number(report.get('data_quality_top_violations'))})"),
        ("Max drift (PSI)", _number(report.get("max_drift"))),
        ("Baseline rows", _number(baseline.get("rows"))),
        ("Schema", escape(str((baseline.get("schema") or {}).get("name", "")))),
    ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _legend() -> str:
    return ('<p class="legend">'
            f'<span><i class="swatch" style="background:{_BASELINE_COLOUR}"></i>baseline share</span>'
            f'<span><i class="swatch" style="background:{_WINDOW_COLOUR}"></i>window share</span>'
            f'<span><i class="swatch" style="background:{_DRIFT_COLOUR}"></i>window share (drifted)</span>'
            "</p>")


def _section(name: str, item: Mapping[str, Any], *, anchor: str) -> str:
    drifted = bool(item.get("drifted"))
    signals = [str(s) for s in item.get("signals") or []]
    status = (f'<span class="drifted">drifted: {escape(", ".join(signals))}</span>' if drifted
              else '<span class="quiet">quiet</span>')
    quality = [str(s) for s in item.get("quality_signals") or []]
    if quality:
        status += f' <span class="drifted">data quality: {escape(", ".join(quality))}</span>'
    stats = [("type", item.get("type", "score")), ("PSI", item.get("psi")), ("JS distance", item.get("js")),
             ("KS", item.get("ks")), ("missing rate", item.get("missing_rate")),
             ("baseline missing rate", item.get("baseline_missing_rate")),
             ("out-of-range rate", item.get("out_of_range_rate")), ("unseen share", item.get("unseen_share")),
             ("mean", item.get("mean")), ("baseline mean", item.get("baseline_mean")),
             ("rows", item.get("count"))]
    header = "".join(f"<th>{escape(k)}</th>" for k, v in stats if v is not None)
    values = "".join(f"<td>{escape(_number(v)) if not isinstance(v, str) else escape(v)}</td>"
                     for _, v in stats if v is not None)
    unseen = item.get("unseen_categories") or {}
    unseen_text = ""
    if unseen:
        listed = ", ".join(f"{escape(str(k))} ({int(v)})" for k, v in unseen.items())
        unseen_text = f"<p>Unseen categories: {listed}</p>"
    chart = _chart(name, item.get("histogram"), drifted=drifted)
    return (f'<section id="{escape(anchor)}"><h2>{escape(name)}</h2><p>{status}</p>'
            f"<table><tr>{header}</tr><tr>{values}</tr></table>{unseen_text}{chart}</section>")


def _bin_labels(histogram: Mapping[str, Any]) -> list[str]:
    if "categories" in histogram:
        return [str(c) for c in histogram["categories"]]
    edges = [float(e) for e in histogram.get("edges", [])]
    if not edges:
        return ["all values"]
    labels = [f"≤ {_short(edges[0])}"]
    labels += [f"({_short(a)}, {_short(b)}]" for a, b in itertools.pairwise(edges)]
    labels.append(f"> {_short(edges[-1])}")
    return labels


def _chart(name: str, histogram: Any, *, drifted: bool) -> str:
    if not isinstance(histogram, Mapping):
        return "<p>No distribution to plot.</p>"
    baseline = _shares(histogram.get("baseline", []))
    window = _shares(histogram.get("window", []))
    labels = _bin_labels(histogram)
    groups = min(len(labels), len(baseline), len(window)) if window else min(len(labels), len(baseline))
    if groups == 0:
        return "<p>No distribution to plot.</p>"
    top = max([*baseline[:groups], *window[:groups], 1e-9])
    group_width = 2 * _BAR_WIDTH + _GROUP_GAP
    width = 40 + groups * group_width
    height = _CHART_HEIGHT + _LABEL_SPACE
    colour = _DRIFT_COLOUR if drifted else _WINDOW_COLOUR
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(name, quote=True)}: baseline vs window bin shares">',
             f'<text x="2" y="10">{top:.0%}</text>',
             f'<line x1="36" y1="{_CHART_HEIGHT}" x2="{width}" y2="{_CHART_HEIGHT}" stroke="#bcccdc"/>']
    for index in range(groups):
        x = 40 + index * group_width
        for offset, shares, fill, who in ((0, baseline, _BASELINE_COLOUR, "baseline"),
                                          (_BAR_WIDTH, window, colour, "window")):
            if index >= len(shares):
                continue
            bar = _CHART_HEIGHT * shares[index] / top
            parts.append(f'<rect x="{x + offset}" y="{_CHART_HEIGHT - bar:.1f}" width="{_BAR_WIDTH - 1}" '
                         f'height="{bar:.1f}" fill="{fill}"><title>{escape(labels[index])} {who}: '
                         f"{shares[index]:.1%}</title></rect>")
        label_x = x + _BAR_WIDTH
        parts.append(f'<text x="{label_x}" y="{_CHART_HEIGHT + 12}" text-anchor="end" '
                     f'transform="rotate(-40 {label_x} {_CHART_HEIGHT + 12})">{escape(_clip(labels[index]))}'
                     "</text>")
    parts.append("</svg>")
    return "".join(parts)


def _shares(counts: Sequence[Any]) -> list[float]:
    values = [float(c) for c in counts]
    total = sum(values)
    return [v / total for v in values] if total > 0 else [0.0 for _ in values]


def _short(value: float) -> str:
    return f"{value:.4g}"


def _clip(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)
