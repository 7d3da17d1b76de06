"""Printing a cost estimate for people, and the comparison of two (main against a change) as Markdown for the
pull-request comment. Both read the JSON form (``Estimate.to_dict``), so a comparison can be made from files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

UNKNOWN = "unknown"


def money(value: float | None) -> str:
    return UNKNOWN if value is None else f"${value:,.2f}"


def _range(at_min: float | None, at_max: float | None) -> str:
    if at_min is None or at_max is None:
        return UNKNOWN
    return money(at_min) if at_min == at_max else f"{money(at_min)} - {money(at_max)}"


def _total(totals: Mapping[str, Any]) -> str:
    if totals["unknown_lines"] and totals.get("known_lines") == 0:
        return f"{UNKNOWN} ({totals['unknown_lines']} line(s) without a price)"
    text = _range(totals["at_min"], totals["at_max"])
    if totals["unknown_lines"]:
        text += f" + {totals['unknown_lines']} unknown line(s)"
    return text


def render_text(document: Mapping[str, Any]) -> str:
    out = [f"Monthly estimate for {document['environment']} ({document['region']}), USD, "
           f"{document['hours_per_month']:g} h a month; prices read {document['prices']['read_on']} "
           f"from {document['prices']['table']} (regions covered: {', '.join(document['prices']['regions'])})", ""]
    scopes = [*document["models"], "shared"]
    for scope in scopes:
        lines = [line for line in document["lines"] if line["scope"] == scope]
        if not lines:
            continue
        label = f"model {scope}" if scope != "shared" else "shared by every model"
        out.append(f"== {label}: {_total(document['per_scope'][scope])}")
        for line in lines:
            cost = _range(line["at_min"], line["at_max"])
            if line["unknown"]:
                cost = f"{UNKNOWN} (no price for {', '.join(line['unknown'])})"
            out.append(f"  {line['item']:<58} {cost}")
            out.append(f"      {line['quantity']}; {line['basis']}")
        out.append("")
    out.append(f"== total per month (at min - at max instances): {_total(document['totals'])}")
    if document["usage"]:
        out += ["", "== per use (not in the total)"]
        for rate in document["usage"]:
            price = f"{UNKNOWN} (no price for {', '.join(rate['unknown'])})" if rate["unknown"] else money(rate["usd"])
            out.append(f"  {rate['scope']}: {rate['item']:<50} {price} per {rate['per']}  ({rate['basis']})")
    if document["notes"]:
        out += ["", "== notes", *(f"  - {note}" for note in document["notes"])]
    if document["prices"]["sources"]:
        out += ["", "== price sources"]
        for key, source in document["prices"]["sources"].items():
            out.append(f"  {key}: {source.get('title', key)} ({source.get('url', 'no address given')}; prices as of "
                       f"{source.get('prices_as_of', 'an unstated date')})")
    return "\n".join(out) + "\n"


def _lines_by_key(document: Mapping[str, Any] | None) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {} if document is None else {(line["scope"], line["item"]): line for line in document["lines"]}


def _delta(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return UNKNOWN
    change = after - before
    return "0" if abs(change) < 0.005 else f"{'+' if change > 0 else '-'}${abs(change):,.2f}"


def render_comparison(pairs: Sequence[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]]) -> str:
    """Markdown: per environment the totals of main and the change, and every line whose cost changed."""
    out = ["### Monthly cost: main → this change", "",
           "| environment | main | this change | change (at max instances) |", "|---|---|---|---|"]
    for environment, main, change in pairs:
        before = _total(main["totals"]) if main else "(no estimate)"
        after = _total(change["totals"]) if change else "(no estimate)"
        delta = _delta(main["totals"]["at_max"] if main else 0.0, change["totals"]["at_max"] if change else 0.0)
        if (main and main["totals"]["unknown_lines"]) or (change and change["totals"]["unknown_lines"]):
            delta += " (known lines)"
        out.append(f"| {environment} | {before} | {after} | {delta} |")
    for environment, main, change in pairs:
        old, new = _lines_by_key(main), _lines_by_key(change)
        rows = []
        for key in sorted(set(old) | set(new)):
            a, b = old.get(key), new.get(key)
            a_text = _range(a["at_min"], a["at_max"]) if a else "-"
            b_text = _range(b["at_min"], b["at_max"]) if b else "-"
            if a_text != b_text or (a and b and a["quantity"] != b["quantity"]):
                rows.append(f"| {key[0]} | {key[1]} | {a_text} | {b_text} |")
        if rows:
            out += ["", f"<details><summary>{environment}: {len(rows)} line(s) changed</summary>", "",
                    "| scope | line | main | this change |", "|---|---|---|---|", *rows, "", "</details>"]
    reference = next((d for _, m, c in pairs for d in (c, m) if d), None)
    if reference:
        out += ["", f"Prices: {reference['prices']['table']} (read {reference['prices']['read_on']}); jobs and "
                "scheduled functions at their time limits; `unknown`: the table has no price for that region. "
                "`make cost ENV=<env>` prints every line and its basis."]
    return "\n".join(out) + "\n"
