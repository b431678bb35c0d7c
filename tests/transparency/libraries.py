"""The libraries whose doctests the transparency suite runs, and their known bridged failures."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Library:
    """A PyPI distribution at an exact version, and the import packages whose doctests count."""

    requirement: str
    packages: tuple[str, ...]  # searched for doctests
    tops: tuple[str, ...]  # top-level import names the distribution provides

    @property
    def name(self) -> str:
        return self.requirement.partition("==")[0]


LIBRARIES = [
    Library("toolz==1.2.0", ("toolz",), ("toolz", "tlz")),
    Library("sortedcontainers==2.4.0", ("sortedcontainers",), ("sortedcontainers",)),
    Library("python-dateutil==2.9.0.post0", ("dateutil",), ("dateutil",)),
    Library("attrs==26.1.0", ("attr", "attrs"), ("attr", "attrs")),
]

# Examples that pass natively and fail bridged, for reasons inherent to the process boundary:
# (doctest name, example source) -> why. The suite fails on a failure not listed here, and on
# a listed one that passes (then remove it), so this list stays the truth.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

SHARE_REQUIRED = 0.98
