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
    Library("more-itertools==10.8.0", ("more_itertools",), ("more_itertools",)),
]

# Examples that pass natively and fail bridged, for reasons inherent to the process boundary:
# (doctest name, example source) -> why. The suite fails on a failure not listed here, and on
# a listed one that passes (then remove it), so this list stays the truth.
_COPY = (
    "lists cross by value: SequenceView(seq) in the worker views a copy of the host's list, so "
    "seq.append(3) in the host does not reach it"
)
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("toolz.sandbox.core.EqualityHashKey", "s = set(map(EqualityHashDefault, [L1, L2]))"): (
        "EqualityHashKey hashes by value in the worker; a proxy of it refuses hash() (issue "
        "16), as its worker-made hash could disagree with equal values of the host"
    ),
    ("more_itertools.more.SequenceView", "view"): _COPY,
    ("more_itertools.more.SequenceView", "view[1:-1]"): _COPY,
    ("more_itertools.more.SequenceView", "len(view)"): _COPY,
}

SHARE_REQUIRED = 0.98
