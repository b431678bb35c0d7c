"""A library written against pandas 2.2: it uses Series.case_when (new in pandas 2.2)."""

from __future__ import annotations

import pandas as pd


def get_data() -> pd.Series:
    """A string Series labelled with pandas 2.2's case_when."""
    values = pd.Series([1, 5, 10])
    labels = pd.Series(["small", "small", "small"]).case_when(
        [(values >= 10, "large"), (values >= 5, "medium")]  # the first match wins
    )
    return labels.astype("string")


def describe() -> str:
    return f"pandas {pd.__version__}, has Series.case_when: {hasattr(pd.Series, 'case_when')}"
