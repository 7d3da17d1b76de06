"""Where a setting is written in cdk.json (mlsettings.config.locations)."""

from __future__ import annotations

import json

from mlsettings.config.locations import Location, locate, positions

TEXT = json.dumps({"context": {"defaults": {"training": {"instance_type": "ml.g5.xlarge"}},
                               "environments": {"dev": {"serving": {"sla": {"p99_latency_ms": 300}},
                                                        "monitoring": {"alarms": {"page": {"emails": ["a@b.c"]}}}},
                                                "prod": {}}}}, indent=2)


def _at(needle: str) -> Location:
    line = next(i for i, row in enumerate(TEXT.splitlines(), 1) if needle in row)
    row = TEXT.splitlines()[line - 1]
    return Location(line, row.index(needle.rsplit(": ", maxsplit=1)[-1]) + 1)


def test_an_environments_own_key_is_found_where_its_value_starts() -> None:
    assert locate(TEXT, "environments.dev.serving.sla.p99_latency_ms is 0; allowed: …") == _at('"p99_latency_ms": 300')


def test_an_inherited_key_is_found_in_the_defaults() -> None:
    assert locate(TEXT, "environments.prod.training.instance_type is 'x'") == _at('"instance_type": "ml.g5.xlarge"')


def test_list_items_and_missing_keys() -> None:
    assert locate(TEXT, "environments.dev.monitoring.alarms.page.emails[0] is …") == _at('"a@b.c"')
    # a key written nowhere is reported at the closest enclosing object that is
    assert locate(TEXT, "environments.prod.serving.champion.min_instances is 1") == positions(TEXT)[
        ("context", "environments", "prod")]
    assert locate(TEXT, "no key here") is None
