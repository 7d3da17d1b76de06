"""Errors an operator can act on: printed as one line naming the problem, exit status 2."""


class OperatorError(Exception):
    """A refusal or a bad argument the operator can correct (never a bug)."""
