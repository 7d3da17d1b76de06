"""Source of docs/architecture.png (`make docs` renders it): the registry environment and the environments that
serve its stages, each possibly in its own account, and the hops between them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

WIDTH, HEIGHT = 0.27, 0.12
COLUMNS = {"dev": 0.02, "staging": 0.36, "prod": 0.70}
PANELS = {
    "dev": "dev: the registry environment (account A)\nmake deploy ENV=dev  ->  cdk deploy -c env=dev 'dev/*'",
    "staging": "staging: serves Staging (account B, or A)\nmake deploy ENV=staging",
    "prod": "prod: serves Production (account C, or A)\nmake deploy ENV=prod",
}
BOXES = {
    ("dev", "data"): (0.80, "Data bucket (versioned, KMS)\nnew data / schedule starts training"),
    ("dev", "pipeline"): (0.63,
                          "SageMaker Pipeline: validate > preprocess >\ntrain (spot GPU, checkpoints) > evaluate >"
                                "\nquality gate > baseline > register"),
    ("dev", "registry"): (0.46, "Model Registry (package group)\nDevelopment > Staging > Production,\n"
                                "approved in SageMaker Studio"),
    ("dev", "gate"): (0.29, "Promotion gate (Lambda): no skipped stage,\nreverts and pages; deployment ledger\n"
                            "(>= 2 previous production versions)"),
    ("dev", "artifacts"): (0.12, "Artifact bucket: models, golden payloads,\nbaselines (read across accounts by\n"
                                 "the consumers' roles only)"),
}
for env, stage in (("staging", "Staging"), ("prod", "Production")):
    BOXES[(env, "deployer")] = (0.80, f"Deployer (Step Functions): {stage} promotions\nblue/green canary, "
                                      "auto-rollback,\ngolden-payload health check")
    BOXES[(env, "endpoint")] = (0.63, "Endpoint: Champion / Challenger (A/B),\ndata capture of every request,\n"
                                      "autoscaling from the SLA")
    BOXES[(env, "api")] = (0.46, "Inference API (Lambda): endpoint >\nfallback model > cached answer >\n"
                                 "safe default; prediction log")
    BOXES[(env, "drift")] = (0.29, "Drift + quality monitor (Lambda, daily):\ncapture + prediction log vs baseline,\n"
                                   "ground truth; batch scoring")
    BOXES[(env, "alarms")] = (0.12, "Dashboard, alarms > SNS\npage / ticket > on-call")
ARROWS = [
    (("dev", "data"), ("dev", "pipeline"), ""), (("dev", "pipeline"), ("dev", "registry"), ""),
    (("dev", "registry"), ("dev", "gate"), ""),
    (("dev", "gate"), ("staging", "deployer"), ""),
    (("dev", "gate"), ("prod", "deployer"), ""),
    (("staging", "deployer"), ("dev", "gate"), ""),
    (("staging", "deployer"), ("staging", "endpoint"), ""), (("prod", "deployer"), ("prod", "endpoint"), ""),
    (("staging", "api"), ("staging", "endpoint"), ""), (("prod", "api"), ("prod", "endpoint"), ""),
    (("staging", "api"), ("staging", "drift"), ""), (("prod", "api"), ("prod", "drift"), ""),
    (("staging", "drift"), ("staging", "alarms"), ""), (("prod", "drift"), ("prod", "alarms"), ""),
    (("dev", "artifacts"), ("prod", "drift"), ""),
]
# Hop labels, placed where no box is: (x, y, text).
LABELS = [(0.335, 0.755, "accepted promotions\n(EventBridge rule\nforwards to the\nserving account)"),
          (0.335, 0.40, "deployment results\n(forwarded back;\nthe gate records\nthem in the ledger)"),
          (0.335, 0.065, "models, golden payloads, baselines (CreateModel from the package)"),
          (0.165, 0.435, "state change")]


def _centre(key: tuple[str, str]) -> tuple[float, float]:
    y, _ = BOXES[key]
    return COLUMNS[key[0]] + WIDTH / 2, y + HEIGHT / 2


def render(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(15, 9), dpi=100)
    ax.set_axis_off()
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0.02, 1.02)
    for env, x in COLUMNS.items():
        ax.add_patch(FancyBboxPatch((x - 0.01, 0.08), WIDTH + 0.02, 0.93, boxstyle="round,pad=0.005",
                                    fc="#f7f7f7", ec="#999999", ls="--"))
        ax.text(x + WIDTH / 2, 0.975, PANELS[env], ha="center", va="center", fontsize=9, weight="bold")
    for (env, _name), (y, label) in BOXES.items():
        ax.add_patch(FancyBboxPatch((COLUMNS[env], y), WIDTH, HEIGHT, boxstyle="round,pad=0.008",
                                    fc="#eef4fb", ec="#2f5d8a"))
        ax.text(COLUMNS[env] + WIDTH / 2, y + HEIGHT / 2, label, ha="center", va="center", fontsize=8)
    for start, end, label in ARROWS:
        (x1, y1), (x2, y2) = _centre(start), _centre(end)
        bend = 0.15 if start[0] != end[0] else 0.0
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=12, color="#555555",
                                     connectionstyle=f"arc3,rad={bend}", shrinkA=28, shrinkB=28))
        if label:
            ax.text((x1 + x2) / 2, (y1 + y2) / 2 + 0.02, label, ha="center", fontsize=7, color="#333333",
                    bbox={"fc": "white", "ec": "none", "pad": 1})
    for x, y, label in LABELS:
        ax.text(x, y, label, ha="center", va="center", fontsize=7, color="#333333",
                bbox={"fc": "white", "ec": "#cccccc", "pad": 2})
    ax.text(0.5, 0.02, "One cdk.Stage per environment from cdk.json; all three in one account is the quickstart and "
            "behaves the same. Only the registry environment trains and holds the group, gate and ledger.",
            ha="center", fontsize=8, style="italic")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    render(Path(__file__).with_name("architecture.png"))
