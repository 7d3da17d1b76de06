"""The wine team's evaluation hook (training.code.evaluate_hook, docs/TRAINING.md "An evaluation hook").

The platform's Evaluate step calls ``evaluate(labels, answers, schema)`` on the scored test rows: ``labels`` as
trained (here the class index), ``answers`` as the endpoint serves them (here ``{"label": ..., "probabilities":
[...]}``), ``schema`` the model's data schema. What it returns — up to 20 finite numbers by name — is recorded as
``team_metrics`` in the evaluation report beside the platform's metrics; the quality gate stays the platform's.
"""

from __future__ import annotations

from typing import Any


def evaluate(labels: list[int], answers: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, float]:
    classes = schema["label"]["classes"]
    predicted = [max(range(len(a["probabilities"])), key=a["probabilities"].__getitem__) for a in answers]
    recalls = []
    for index in range(len(classes)):
        members = [p for label, p in zip(labels, predicted, strict=True) if int(label) == index]
        if members:
            recalls.append(sum(1 for p in members if p == index) / len(members))
    return {"worst_class_recall": min(recalls), "classes_seen": float(len(recalls))}
