"""Argument types that check an operator's value while the command line is parsed, before any AWS call: a bad
value is one line naming the option, the value and what is allowed (exit 2), never a sign-in first."""

from __future__ import annotations

from collections.abc import Callable

from mlops.errors import OperatorError


def integer(option: str, *, low: int, high: int | None = None) -> Callable[[str], int]:
    allowed = f"an integer from {low} to {high}" if high is not None else f"an integer of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise OperatorError(f"{option} is {text!r}; allowed: {allowed}") from None
        if value < low or (high is not None and value > high):
            raise OperatorError(f"{option} is {value}; allowed: {allowed}")
        return value

    parse.__name__ = option  # argparse names the type in its own messages
    return parse
