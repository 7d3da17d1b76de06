"""The clinical team's preprocessing hook (training.code.preprocess_hook, docs/TRAINING.md "Hooks").

The platform's Preprocess step calls ``clean(frame, schema)`` on the raw rows (the schema's feature columns and the
label, as read from the data) before it computes the features and splits: the hook may drop or fix rows, never add
rows or change the columns, since the endpoint computes the same features from the same raw columns. This one
drops exact duplicate rows, which would otherwise land on both sides of the train/test split.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def clean(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    return frame.drop_duplicates(keep="first")
