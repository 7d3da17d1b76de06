"""Source of docs/architecture.png (`make docs` renders it): the per-environment picture of the stack."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

BOXES = {
    "data": (0.00, 0.62, "Data bucket\n(versioned, KMS)"),
    "pipeline": (0.26, 0.62, "SageMaker Pipeline\nvalidate > preprocess >\ntrain (spot GPU) > evaluate >\n"
                             "quality gate > baseline > register"),
    "registry": (0.52, 0.62, "Model Registry\nDevelopment > Staging >\nProduction"),
    "gate": (0.52, 0.34, "Promotion gate (Lambda)\n+ deployment ledger\n(DynamoDB)"),
    "deployer": (0.78, 0.62, "Deployer\n(blue/green canary,\nauto-rollback, health check)"),
    "endpoint": (0.78, 0.34, "Endpoint: Champion /\nChallenger, data capture"),
    "api": (0.78, 0.06, "Inference API (Lambda)\nfallback model > cache >\nsafe default"),
    "capture": (0.52, 0.06, "Capture bucket\n(every prediction, JSONL)"),
    "drift": (0.26, 0.06, "Drift + quality monitor\n(Lambda, daily)"),
    "alarms": (0.00, 0.34, "Dashboard, alarms\n> SNS page / ticket\n> on-call"),
}
ARROWS = [("data", "pipeline"), ("pipeline", "registry"), ("registry", "gate"), ("gate", "deployer"),
          ("deployer", "endpoint"), ("api", "endpoint"), ("endpoint", "capture"), ("api", "capture"),
          ("capture", "drift"), ("drift", "alarms"), ("drift", "pipeline")]
WIDTH, HEIGHT = 0.2, 0.22


def render(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(13, 7), dpi=110)
    ax.set_axis_off()
    ax.set_xlim(-0.02, 1.0)
    for x, y, label in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), WIDTH, HEIGHT, boxstyle="round,pad=0.01", fc="#eef4fb", ec="#2f5d8a"))
        ax.text(x + WIDTH / 2, y + HEIGHT / 2, label, ha="center", va="center", fontsize=9)
    for start, end in ARROWS:
        (x1, y1, _), (x2, y2, _) = BOXES[start], BOXES[end]
        ax.add_patch(FancyArrowPatch((x1 + WIDTH / 2, y1 + HEIGHT / 2), (x2 + WIDTH / 2, y2 + HEIGHT / 2),
                                     arrowstyle="-|>", mutation_scale=14, color="#555", shrinkA=55, shrinkB=55))
    ax.set_title("One environment (dev, staging or prod): cdk deploy -c env=<name>", fontsize=12)
    fig.savefig(path, bbox_inches="tight")


if __name__ == "__main__":
    render(Path(__file__).with_suffix(".png"))
