"""The demo's report folder: PNG plots, the drift HTML report, the A/B report, the ledger and the hops
between the accounts."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.s3_uri import split_s3_uri
from mlplatform.inference.degradation import SOURCE_ENDPOINT
from mlsettings.vocabulary import CHAMPION

if TYPE_CHECKING:
    from mlops.demo.lifecycle import DemoWorld


@dataclasses.dataclass
class _Report:
    out_dir: Path
    plt: Any
    written: list[Path] = dataclasses.field(default_factory=list)

    def save(self, figure: Any, name: str) -> None:
        path = self.out_dir / name
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        self.plt.close(figure)
        self.written.append(path)

    def json(self, name: str, document: Any) -> Path:
        path = self.out_dir / name
        path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
        self.written.append(path)
        return path


def write(out_dir: Path, *, world: DemoWorld, summary: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = _Report(out_dir, plt)
    _volume(report, world)
    _latency(report, world)
    _fallbacks(report, world)
    if world.drift_report:
        _drift(report, world, world.drift_report)
    if world.ab_report is not None:
        report.json("ab_report.json", world.ab_report)
    _ledger(report, world)
    if world.alarm_states:
        report.json("alarms.json", world.alarm_states)
    if world.page_messages:
        report.json("page.json", world.page_messages)
    if world.hops:
        report.json("hops.json", world.hops)  # every event that crossed into another account, as it arrived there
    report.json("summary.json", summary)
    return report.written


def _volume(report: _Report, world: DemoWorld) -> None:
    served = {variant: sum(rows) for variant, rows in world.runtime.served.items()}
    figure, axis = report.plt.subplots(figsize=(6, 4))
    axis.bar(list(served), list(served.values()), color="#2f5d8a")
    axis.set_title("Request volume per variant (rows answered by the endpoint)")
    report.save(figure, "request_volume.png")


def _latency(report: _Report, world: DemoWorld) -> None:
    figure, axis = report.plt.subplots(figsize=(7, 4))
    sla = world.config.serving.sla.p99_latency_ms
    colours = iter(["#2f5d8a", "#c0504d", "#9bbb59"])
    for variant, latencies in (world.metrics.latencies_ms.items() if world.metrics else []):
        colour = next(colours, "#555555")
        axis.hist(latencies, bins=30, alpha=0.6, label=variant, color=colour)
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        axis.axvline(p99, color=colour, linestyle=":", label=f"{variant} p99 {p99:.1f} ms")
    axis.axvline(sla, color="black", linestyle="--", label=f"SLA p99 {sla:g} ms (serving.sla.p99_latency_ms)")
    axis.set_xlabel("ModelLatency (ms): the model's own time per request")
    axis.set_ylabel("requests")
    axis.legend(fontsize=8)
    axis.set_title(f"Latency per variant: p99 against the SLA ({world.config.name})")
    report.save(figure, "latency.png")


def _fallbacks(report: _Report, world: DemoWorld) -> None:
    sources: dict[str, int] = {}
    for response in world.responses:
        sources[response["source"]] = sources.get(response["source"], 0) + 1
    figure, (axis, over_time) = report.plt.subplots(1, 2, figsize=(11, 4))
    bar_colours = ["#2f5d8a" if source == SOURCE_ENDPOINT else "#c0504d" for source in sources]
    axis.bar(list(sources), list(sources.values()), color=bar_colours)
    total = sum(sources.values()) or 1
    axis.set_title(f"Who answered the API (fallback rate {1 - sources.get(SOURCE_ENDPOINT, 0) / total:.1%})")
    block = 25  # requests per point: the rate the FallbackRate alarm watches, in the demo's compressed time
    degraded = [response["source"] != SOURCE_ENDPOINT for response in world.responses]
    rates = [100.0 * sum(degraded[i:i + block]) / len(degraded[i:i + block]) for i in range(0, len(degraded), block)]
    over_time.plot([i * block for i in range(len(rates))], rates, marker="o", color="#c0504d")
    over_time.axhline(world.config.monitoring.alarms.fallback_rate_percent, linestyle="--", color="grey",
                      label="FallbackRate alarm threshold (page)")
    over_time.set_xlabel(f"API request number (points: blocks of {block})")
    over_time.set_ylabel("% answered by a fallback")
    over_time.legend()
    over_time.set_title("Fallback rate over the run")
    report.save(figure, "fallback_rate.png")


def _drift(report: _Report, world: DemoWorld, drift_report: dict[str, Any]) -> None:
    features = drift_report["variants"].get(CHAMPION, {}).get("drift", {}).get("features", {})
    names = list(features)
    psi = [features[n]["psi"] or 0.0 for n in names]
    figure, axis = report.plt.subplots(figsize=(8, 7))
    axis.barh(names, psi, color=["#c0504d" if features[n]["drifted"] else "#2f5d8a" for n in names])
    axis.set_xlabel("PSI against the training baseline (red: drifted)")
    axis.set_title("Per-feature drift, Champion")
    report.save(figure, "feature_drift.png")
    report.json("drift_report.json", drift_report)
    html_uri = drift_report.get("html_reports", {}).get(CHAMPION)
    if html_uri:
        bucket, key = split_s3_uri(str(html_uri))
        html = report.out_dir / "drift_report_Champion.html"
        html.write_bytes(world.prod.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        report.written.append(html)


def _ledger(report: _Report, world: DemoWorld) -> None:
    ledger = [dataclasses.asdict(row) for row in world.ledger().decisions()]
    report.json("ledger.json", ledger)
    if ledger:
        path = report.out_dir / "ledger.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(ledger[0]))
            writer.writeheader()
            writer.writerows(ledger)
        report.written.append(path)
