"""Sums that come out the same bit for bit however a window is split into parts and in whatever order the
parts are added (standard library and numpy only).

A drift report carries the window mean of every numeric feature and of the scores. Floating-point addition is
not associative, so a mean summed chunk by chunk, or worker by worker, depends on how the rows were grouped.
Merged partial results (``mlcore.drift.partials``) must equal the one-pass report exactly, so a sum here is:

1. **canonical per object**: the finite values of one object (capture file), in row order, are summed in
   consecutive blocks of ``BLOCK_VALUES`` with ``numpy.sum`` (the last block of an object may be shorter).
   The blocks depend only on the object's own rows, never on chunk sizes, workers or other objects. Summing
   every value exactly instead costs 20-40 ns a value (``math.fsum``, exponent buckets), ~60 times
   ``numpy.sum``; block sums cost nothing measurable.
2. **exact across blocks**: each block sum (a float) is added exactly to a binary fraction ``m * 2**e`` with
   Python integers, so the total of the blocks does not depend on their order or grouping, and the mean is
   the correctly rounded quotient of that exact total by the count.

What "the same" assumes: the same numpy build sums a block of the same values the same way (its pairwise
summation is fixed C code), which holds wherever one release of this project runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

BLOCK_VALUES = 4096
"""Values per canonical block of one object. Part of the partial-result format (``mlcore.drift.partials``):
changing it changes the last bits of means, so it changes the format version too."""


class ExactSum:
    """An exact sum of floats, ``numerator * 2**exponent`` with Python integers; adding is associative."""

    __slots__ = ("exponent", "numerator")

    def __init__(self, numerator: int = 0, exponent: int = 0) -> None:
        self.numerator = numerator
        self.exponent = exponent

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"an exact sum takes finite values, got {value!r}")
        numerator, denominator = value.as_integer_ratio()
        self._add(numerator, -(denominator.bit_length() - 1))

    def merge(self, other: ExactSum) -> None:
        self._add(other.numerator, other.exponent)

    def _add(self, numerator: int, exponent: int) -> None:
        if numerator == 0:
            return
        if self.numerator == 0:
            self.numerator, self.exponent = numerator, exponent
        elif exponent >= self.exponent:
            self.numerator += numerator << (exponent - self.exponent)
        else:
            self.numerator = (self.numerator << (self.exponent - exponent)) + numerator
            self.exponent = exponent

    def fraction(self) -> Fraction:
        return Fraction(self.numerator) * (Fraction(2) ** self.exponent)

    def mean(self, count: int) -> float | None:
        """The correctly rounded ``sum / count``; None without values or when it overflows a float."""
        if count <= 0:
            return None
        try:
            return float(self.fraction() / count)
        except OverflowError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return {"numerator": str(self.numerator), "exponent": self.exponent}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, where: str) -> ExactSum:
        if not isinstance(doc, Mapping) or set(doc) != {"numerator", "exponent"}:
            raise ValueError(f"{where} must be an object with numerator and exponent")
        numerator, exponent = doc["numerator"], doc["exponent"]
        if not isinstance(numerator, str) or not isinstance(exponent, int) or isinstance(exponent, bool):
            raise ValueError(f"{where}: numerator must be a decimal string and exponent an integer")
        try:
            value = int(numerator, 10)
        except ValueError:
            raise ValueError(f"{where}.numerator is not a decimal integer") from None
        return cls(value, exponent)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExactSum) and self.fraction() == other.fraction()

    def __hash__(self) -> int:
        return hash(self.fraction())

    def __repr__(self) -> str:
        return f"ExactSum({self.numerator} * 2**{self.exponent})"


class CanonicalSum:
    """The canonical sum of the finite values of a stream of objects (see the module docstring): values arrive
    in chunks, in row order; ``close_object()`` ends an object, so no block spans two of them."""

    __slots__ = ("_carry", "exact")

    def __init__(self) -> None:
        self.exact = ExactSum()
        self._carry: npt.NDArray[np.float64] = np.empty(0, dtype=np.float64)

    def add(self, values: npt.NDArray[np.float64]) -> None:
        """Finite values, in row order."""
        if not values.size:
            return
        data = np.concatenate([self._carry, values]) if self._carry.size else values
        full = data.size - data.size % BLOCK_VALUES
        for start in range(0, full, BLOCK_VALUES):
            self.exact.add(float(np.sum(data[start:start + BLOCK_VALUES])))
        self._carry = data[full:].copy()

    def close_object(self) -> None:
        if self._carry.size:
            self.exact.add(float(np.sum(self._carry)))
            self._carry = np.empty(0, dtype=np.float64)

    @property
    def open(self) -> bool:
        """Values of an object not yet closed are pending."""
        return bool(self._carry.size)
