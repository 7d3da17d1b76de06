"""The vendored price table (mlops/cost/prices.json) or one an operator passes with --prices: list prices by
region and key, each naming its source. A price the table lacks for a region is unknown, never zero."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.errors import OperatorError

VENDORED = Path(__file__).with_name("prices.json")
REPO_ROOT = VENDORED.parents[2]


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    per: str
    source: str


@dataclass(frozen=True)
class PriceTable:
    read_on: str
    currency: str
    sources: Mapping[str, Mapping[str, str]]
    entries: Mapping[tuple[str, str], Price]  # (region, key)
    path: str

    def get(self, region: str, key: str) -> Price | None:
        return self.entries.get((region, key))

    @property
    def regions(self) -> list[str]:
        return sorted({region for region, _ in self.entries})


def _fail(path: Path, problem: str) -> OperatorError:
    return OperatorError(f"{path}: {problem}; allowed: the layout of {VENDORED.name} (read_on, currency, sources, "
                         "prices[{key, regions, usd, per, source}])")


def parse_table(document: Any, path: Path) -> PriceTable:
    if not isinstance(document, Mapping):
        raise _fail(path, "the top level is not an object")
    sources = document.get("sources")
    prices = document.get("prices")
    if not isinstance(sources, Mapping) or not isinstance(prices, list):
        raise _fail(path, "'sources' must be an object and 'prices' a list")
    if document.get("currency") != "USD" or not isinstance(document.get("read_on"), str):
        raise _fail(path, "'currency' must be \"USD\" and 'read_on' the date the prices were read")
    entries: dict[tuple[str, str], Price] = {}
    for index, row in enumerate(prices):
        where = f"prices[{index}]"
        if not isinstance(row, Mapping) or not {"key", "regions", "usd", "per", "source"} <= set(row):
            raise _fail(path, f"{where} lacks one of key, regions, usd, per, source")
        usd = row["usd"]
        if isinstance(usd, bool) or not isinstance(usd, int | float) or not math.isfinite(usd) or usd < 0:
            raise _fail(path, f"{where}.usd is {usd!r}, not a price")
        if row["source"] not in sources:
            raise _fail(path, f"{where}.source {row['source']!r} is not one of the table's sources")
        if not isinstance(row["regions"], list) or not row["regions"]:
            raise _fail(path, f"{where}.regions must list at least one region")
        for region in row["regions"]:
            if (region, row["key"]) in entries:
                raise _fail(path, f"{where} prices {row['key']} in {region} a second time")
            entries[(region, row["key"])] = Price(key=str(row["key"]), usd=float(usd), per=str(row["per"]),
                                                  source=str(row["source"]))
    shown = path.resolve()
    shown_text = str(shown.relative_to(REPO_ROOT)) if shown.is_relative_to(REPO_ROOT) else str(path)
    return PriceTable(read_on=document["read_on"], currency="USD", sources=sources, entries=entries,
                      path=shown_text)


def load_prices(path: Path | None = None) -> PriceTable:
    path = path or VENDORED
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OperatorError(f"{path}: no such price table") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OperatorError(f"{path}: not a readable JSON price table ({err})") from None
    return parse_table(document, path)
