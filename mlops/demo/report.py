"""The demo's report folder: PNG plots, the drift HTML report, the A/B report, the ledger and the hops
between the accounts."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.s3_uri import split_s3_uri
from mlsettings.vocabulary import CHAMPION

if TYPE_CHECKING:
    from mlops.demo.lifecycle import DemoWorld


def write(out_dir: Path, *, world: DemoWorld, summary: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []

    def save(figure: Any, name: str) -> None:
        path = out_dir / name
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)

    served = {variant: sum(rows) for variant, rows in world.runtime.served.items()}
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.bar(list(served), list(served.values()), color="#2f5d8a")
    axis.set_title("Request volume per variant (rows answered by the endpoint)")
    save(figure, "request_volume.png")

    figure, axis = plt.subplots(figsize=(7, 4))
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
    save(figure, "latency.png")

    sources: dict[str, int] = {}
    for response in world.responses:
        sources[response["source"]] = sources.get(response["source"], 0) + 1
    figure, (axis, over_time) = plt.subplots(1, 2, figsize=(11, 4))
    bar_colours = ["#2f5d8a" if source == "endpoint" else "#c0504d" for source in sources]
    axis.bar(list(sources), list(sources.values()), color=bar_colours)
    total = sum(sources.values()) or 1
    axis.set_title(f"Who answered the API (fallback rate {1 - sources.get('endpoint', 0) / total:.1%})")
    block = 25  # requests per point: the rate the FallbackRate alarm watches, in the demo's compressed time
    degraded = [response["source"] != "endpoint" for response in world.responses]
    rates = [100.0 * sum(degraded[i:i + block]) / len(degraded[i:i + block]) for i in range(0, len(degraded), block)]
    over_time.plot([i * block for i in range(len(rates))], rates, marker="o", color="#c0504d")
    over_time.axhline(world.config.monitoring.alarms.fallback_rate_percent, linestyle="--", color="grey",
                      label="FallbackRate alarm threshold (page)")
    over_time.set_xlabel(f"API request number (points: blocks of {block})")
    over_time.set_ylabel("% answered by a fallback")
    over_time.legend()
    over_time.set_title("Fallback rate over the run")
    save(figure, "fallback_rate.png")

    if world.drift_report:
        features = world.drift_report["variants"].get(CHAMPION, {}).get("drift", {}).get("features", {})
        names = list(features)
        psi = [features[n]["psi"] or 0.0 for n in names]
        figure, axis = plt.subplots(figsize=(8, 7))
        axis.barh(names, psi, color=["#c0504d" if features[n]["drifted"] else "#2f5d8a" for n in names])
        axis.set_xlabel("PSI against the training baseline (red: drifted)")
        axis.set_title("Per-feature drift, Champion")
        save(figure, "feature_drift.png")
        report_path = out_dir / "drift_report.json"
        report_path.write_text(json.dumps(world.drift_report, indent=2, default=str), encoding="utf-8")
        written.append(report_path)
        html_uri = world.drift_report.get("html_reports", {}).get(CHAMPION)
        if html_uri:
            bucket, key = split_s3_uri(str(html_uri))
            html = out_dir / "drift_report_Champion.html"
            html.write_bytes(world.prod.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
            written.append(html)
    if world.ab_report is not None:
        path = out_dir / "ab_report.json"
        path.write_text(json.dumps(world.ab_report, indent=2, default=str), encoding="utf-8")
        written.append(path)
    ledger = [dataclasses.asdict(row) for row in world.ledger().decisions()]
    path = out_dir / "ledger.json"
    path.write_text(json.dumps(ledger, indent=2, default=str), encoding="utf-8")
    written.append(path)
    if ledger:
        path = out_dir / "ledger.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(ledger[0]))
            writer.writeheader()
            writer.writerows(ledger)
        written.append(path)
    if world.alarm_states:
        path = out_dir / "alarms.json"
        path.write_text(json.dumps(world.alarm_states, indent=2, default=str), encoding="utf-8")
        written.append(path)
    if world.page_messages:
        path = out_dir / "page.json"
        path.write_text(json.dumps(world.page_messages, indent=2), encoding="utf-8")
        written.append(path)
    if world.hops:
        path = out_dir / "hops.json"  # every event that crossed into another account, as it arrived there
        path.write_text(json.dumps(world.hops, indent=2), encoding="utf-8")
        written.append(path)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    written.append(path)
    return written
