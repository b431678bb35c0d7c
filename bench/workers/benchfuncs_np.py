"""``benchfuncs`` with numpy imported: the worker side of the array echo and numpy cold start."""

from __future__ import annotations

import numpy  # noqa: F401  (imported for its cost and for decoding arrays)
from benchfuncs import Counter, count_up, echo, echo_args, noop

__all__ = ["Counter", "count_up", "echo", "echo_args", "noop"]
