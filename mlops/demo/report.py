"""The demo's report folder: one section (a folder) per model — PNG plots, the drift HTML report, the A/B report,
its alarms, pages and tickets — and, for the whole platform, the ledger (every model's history, each row naming
its model), the hops between the accounts, ``models.json`` (one row per model: its kind, version in production,
metrics by kind, drift result, pages) and ``summary.json``."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.s3_uri import split_s3_uri
from mlplatform.inference.degradation import SOURCE_ENDPOINT
from mlsettings.vocabulary import CHAMPION, PRODUCTION

if TYPE_CHECKING:
    from mlops.demo.lifecycle import DemoModel, DemoWorld


@dataclasses.dataclass
class _Report:
    out_dir: Path
    plt: Any
    written: list[Path] = dataclasses.field(default_factory=list)

    def save(self, figure: Any, name: str) -> None:
        path = self.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        self.plt.close(figure)
        self.written.append(path)

    def json(self, name: str, document: Any) -> Path:
        path = self.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
        self.written.append(path)
        return path


def write(out_dir: Path, *, world: DemoWorld, summary: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = _Report(out_dir, plt)
    for model in world.models.values():
        _model_section(report, world, model)
    _ledger(report, world)
    if world.hops:
        report.json("hops.json", world.hops)  # every event that crossed into another account, as it arrived there
    report.json("models.json", summary.get("models", {}))
    report.json("summary.json", summary)
    return report.written


def _model_section(report: _Report, world: DemoWorld, model: DemoModel) -> None:
    """``<model>/``: what the demo saw of one model."""
    folder = model.name
    _volume(report, model, folder)
    _latency(report, model, folder)
    _fallbacks(report, model, folder)
    if model.drift_report:
        _drift(report, world, model, folder)
    if model.ab_report is not None:
        report.json(f"{folder}/ab_report.json", model.ab_report)
    if model.alarm_states:
        report.json(f"{folder}/alarms.json", model.alarm_states)
    if model.page_messages:
        report.json(f"{folder}/page.json", model.page_messages)
    if model.tickets:
        report.json(f"{folder}/tickets.json", model.tickets)


def _volume(report: _Report, model: DemoModel, folder: str) -> None:
    figure, axis = report.plt.subplots(figsize=(6, 4))
    axis.bar(list(model.served), list(model.served.values()), color="#2f5d8a")
    axis.set_title(f"{model.name}: request volume per variant (rows answered by the endpoint)")
    report.save(figure, f"{folder}/request_volume.png")


def _latency(report: _Report, model: DemoModel, folder: str) -> None:
    figure, axis = report.plt.subplots(figsize=(7, 4))
    sla = model.config.serving.sla.p99_latency_ms
    colours = iter(["#2f5d8a", "#c0504d", "#9bbb59"])
    for variant, latencies in (model.metrics.latencies_ms.items() if model.metrics else []):
        colour = next(colours, "#555555")
        axis.hist(latencies, bins=30, alpha=0.6, label=variant, color=colour)
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        axis.axvline(p99, color=colour, linestyle=":", label=f"{variant} p99 {p99:.1f} ms")
    axis.axvline(sla, color="black", linestyle="--", label=f"SLA p99 {sla:g} ms (serving.sla.p99_latency_ms)")
    axis.set_xlabel("ModelLatency (ms): the model's own time per request")
    axis.set_ylabel("requests")
    axis.legend(fontsize=8)
    axis.set_title(f"{model.name}: latency per variant, p99 against the SLA ({model.config.name})")
    report.save(figure, f"{folder}/latency.png")


def _sources(model: DemoModel) -> dict[str, int]:
    sources: dict[str, int] = {}
    for response in model.responses:
        sources[response["source"]] = sources.get(response["source"], 0) + 1
    return sources


def _fallbacks(report: _Report, model: DemoModel, folder: str) -> None:
    sources = _sources(model)
    figure, (axis, over_time) = report.plt.subplots(1, 2, figsize=(11, 4))
    bar_colours = ["#2f5d8a" if source == SOURCE_ENDPOINT else "#c0504d" for source in sources]
    axis.bar(list(sources), list(sources.values()), color=bar_colours)
    total = sum(sources.values()) or 1
    axis.set_title(f"{model.name}: who answered the API (fallback rate "
                   f"{1 - sources.get(SOURCE_ENDPOINT, 0) / total:.1%})")
    block = 25  # requests per point: the rate the FallbackRate alarm watches, in the demo's compressed time
    degraded = [response["source"] != SOURCE_ENDPOINT for response in model.responses]
    rates = [100.0 * sum(degraded[i:i + block]) / len(degraded[i:i + block]) for i in range(0, len(degraded), block)]
    over_time.plot([i * block for i in range(len(rates))], rates, marker="o", color="#c0504d")
    over_time.axhline(model.config.monitoring.alarms.fallback_rate_percent, linestyle="--", color="grey",
                      label="FallbackRate alarm threshold (page)")
    over_time.set_xlabel(f"API request number (points: blocks of {block})")
    over_time.set_ylabel("% answered by a fallback")
    over_time.legend()
    over_time.set_title("Fallback rate over the run")
    report.save(figure, f"{folder}/fallback_rate.png")


def _drift(report: _Report, world: DemoWorld, model: DemoModel, folder: str) -> None:
    drift_report = model.drift_report or {}
    features = drift_report["variants"].get(CHAMPION, {}).get("drift", {}).get("features", {})
    names = list(features)
    psi = [features[n]["psi"] or 0.0 for n in names]
    figure, axis = report.plt.subplots(figsize=(8, max(3.0, 0.25 * len(names) + 1)))
    axis.barh(names, psi, color=["#c0504d" if features[n]["drifted"] else "#2f5d8a" for n in names])
    axis.set_xlabel("PSI against the training baseline (red: drifted)")
    axis.set_title(f"{model.name}: per-feature drift, Champion")
    report.save(figure, f"{folder}/feature_drift.png")
    report.json(f"{folder}/drift_report.json", drift_report)
    html_uri = drift_report.get("html_reports", {}).get(CHAMPION)
    if html_uri:
        bucket, key = split_s3_uri(str(html_uri))
        html = report.out_dir / folder / "drift_report_Champion.html"
        html.write_bytes(world.prod.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        report.written.append(html)


def _ledger(report: _Report, world: DemoWorld) -> None:
    """Every model's decisions, each from its own partition of the one ledger table, naming its model."""
    ledger = [{"model": name, "model_package_group": model.group, **dataclasses.asdict(row)}
              for name, model in world.models.items() for row in world.ledger(name).decisions()]
    report.json("ledger.json", ledger)
    if ledger:
        path = report.out_dir / "ledger.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(ledger[0]))
            writer.writeheader()
            writer.writerows(ledger)
        report.written.append(path)


# --------------------------------------------------------------------------------------------- per model
def model_summary(world: DemoWorld, model: DemoModel) -> dict[str, Any]:
    """One model's row of the report: what was observed, nothing assumed."""
    from mlops.demo.lifecycle import serving

    kind = model.kind
    listed = {row["model"]: row for row in world.models_listing.get("models", [])}.get(model.name, {})
    production_version = listed.get("production_version")
    trained = model.training.get(production_version, {}) if isinstance(production_version, int) else {}
    champion = ((model.drift_report or {}).get("variants", {}).get(CHAMPION, {}).get("drift") or {})
    features = champion.get("features", {})
    endpoint = model.endpoints.get(PRODUCTION, "")
    return {
        "problem_type": kind.name,
        "owner": model.config.model.owner if model.config.model else None,
        "model_package_group": model.group,
        "endpoints": dict(model.endpoints),
        "versions": dict(model.versions),
        "versions_by_stage": listed.get("versions"),
        "production_version": production_version,
        "serving": serving(world, model).get(endpoint, {}),
        "gate": trained.get("gate"),
        "metrics": trained.get("metrics", {}),
        "training": {str(version): entry for version, entry in sorted(model.training.items())},
        "api_sources": _sources(model),
        "ab_recommendation": (model.ab_report or {}).get("recommendation"),
        "drift": {"rows": champion.get("rows"), "drifted": champion.get("drifted"),
                  "weighted_drift_score": champion.get("weighted_drift_score"),
                  "drifted_features": sorted(name for name, feature in features.items() if feature.get("drifted")),
                  "prediction_drifted": (champion.get("prediction") or {}).get("drifted")},
        "alarms": {state["alarm"].removeprefix(f"{endpoint}-"): state["state"] for state in model.alarm_states},
        "pages": [page["AlarmName"] for page in model.page_messages],
        "tickets": [ticket["AlarmName"] for ticket in model.tickets],
        "illegal_skip": model.illegal_skip,
        "rollback": model.rollback,
    }


def models_table(models: dict[str, dict[str, Any]]) -> str:
    """The console's view of ``models.json``: one row per model."""
    header = (f"{'model':<16} {'kind':<11} {'prod':>5}  {'metrics (production version)':<68} "
              f"{'drift':<22} pages")
    lines = [header, "-" * len(header)]
    for name, row in models.items():
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in (row.get("metrics") or {}).items()) or "-"
        drift = row.get("drift") or {}
        drifted = f"{len(drift.get('drifted_features') or [])} features drifted" if drift.get("rows") else "-"
        pages = ", ".join(page.rsplit("-", 1)[-1] for page in row.get("pages") or []) or "none"
        version = f"v{row['production_version']}" if row.get("production_version") else "-"
        lines.append(f"{name:<16} {row.get('problem_type', '-'):<11} {version:>5}  {metrics:<68} {drifted:<22} "
                     f"{pages}")
    return "\n".join(lines)
