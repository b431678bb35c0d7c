"""A library pinned to pandas 2.0: it relies on the 2.0 behaviour and has no case_when."""

from __future__ import annotations

import pandas as pd


def get_data() -> pd.Series:
    """A string Series built the pandas 2.0 way (no case_when there)."""
    values = pd.Series([1, 5, 10])
    labels = values.map(lambda v: "large" if v >= 10 else "medium" if v >= 5 else "small")
    return labels.astype("string")


def describe() -> str:
    return f"pandas {pd.__version__}, has Series.case_when: {hasattr(pd.Series, 'case_when')}"
