"""Errors a user can cause. The CLI prints their message on one line and exits with status 2."""

from __future__ import annotations

from collections.abc import Sequence


class MicrotileError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""


class ModelError(MicrotileError):
    """A model file that is unreadable, truncated, not int8, or otherwise not compilable."""


class UnsupportedOpError(ModelError):
    def __init__(self, op: str, node: str, supported: Sequence[str], source: str = "") -> None:
        self.op, self.node, self.supported = op, node, tuple(supported)
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}unsupported op {op} at node {node}; supported: {', '.join(supported)}"
        )


class BudgetError(MicrotileError):
    """No execution plan fits the SRAM budget."""


class BoardFitError(MicrotileError):
    """The compiled model does not fit the board's flash or SRAM."""
