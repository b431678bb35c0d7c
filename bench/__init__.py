"""mvbridge's benchmark suite: ``python bench/run.py``; see docs/performance.md."""

from __future__ import annotations
