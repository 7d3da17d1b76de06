"""The HTML drift report: self-contained, every feature plotted, drifted features first, names escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from mlcore.drift.baseline import build_baseline
from mlcore.drift.html_report import render_drift_html
from mlcore.drift.statistics import compare_columns
from mlsettings.schema import DataSchema

HOSTILE = '<script>alert("x")</script> & co'
SCHEMA = DataSchema.from_dict({
    "name": "html",
    "label": {"name": "y"},
    "features": [
        {"name": "calm", "type": "numeric", "min": -10, "max": 10},
        {"name": HOSTILE, "type": "numeric", "min": -10, "max": 10},
        {"name": "colour", "type": "categorical", "categories": ["red", "<b>blue</b>"]},
    ],
})


@pytest.fixture(scope="module")
def page() -> str:
    rng = np.random.default_rng(0)
    n = 4000
    train = {"calm": rng.normal(0, 1, n), HOSTILE: rng.normal(0, 1, n),
             "colour": rng.choice(np.array(["red", "<b>blue</b>"], dtype=object), n)}
    baseline = build_baseline(train, SCHEMA, probabilities=rng.random(n))
    live = {"calm": rng.normal(0, 1, n), HOSTILE: rng.normal(2, 1, n),
            "colour": rng.choice(np.array(["red", "<b>blue</b>", "<i>new</i>"], dtype=object), n)}
    report = compare_columns(baseline, live, probabilities=rng.random(n)).to_dict()
    assert report["features"][HOSTILE]["drifted"]
    assert not report["features"]["calm"]["drifted"]
    return render_drift_html(report, baseline)


def test_page_is_self_contained_html(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)

    class Collector(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)

    collector = Collector()
    collector.feed(page)
    assert "svg" in collector.tags
    assert "script" not in collector.tags


def test_every_feature_and_the_scores_have_a_plot(page: str) -> None:
    sections = re.findall(r"<section id=\"[^\"]+\"><h2>(.*?)</h2>.*?</section>", page, flags=re.S)
    assert len(sections) == 2 + 3  # prediction, confidence and three features
    section_bodies = re.findall(r"<section.*?</section>", page, flags=re.S)
    assert all("<svg" in body and "<rect" in body for body in section_bodies)


def test_names_and_categories_are_escaped(page: str) -> None:
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert "<b>blue</b>" not in page
    assert "<i>new</i>" not in page
    assert "&lt;i&gt;new&lt;/i&gt;" in page  # the unseen category is listed, escaped


def test_drifted_features_come_first(page: str) -> None:
    headings = re.findall(r"<section id=\"feature-\d+\"><h2>(.*?)</h2>", page)
    assert headings[0].startswith("&lt;script&gt;")
    assert headings.index("calm") > 0
    assert "DRIFT DETECTED" in page
