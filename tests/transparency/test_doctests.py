"""Issue 8's acceptance: real libraries' own doctests pass through proxies as they do natively.

Each library's doctests are found and run natively in an env that has it (``native_doctests``);
the host, which lacks it, runs the same examples through proxies (``bridged``). Per library,
at least ``SHARE_REQUIRED`` of the natively passing examples must also pass bridged, and every
one that does not must be a known limitation with its reason (``libraries.KNOWN_FAILURES``).
"""

from __future__ import annotations

import pytest

from . import conftest
from .bridged import Outcome
from .libraries import KNOWN_FAILURES, LIBRARIES, SHARE_REQUIRED

pytestmark = [pytest.mark.transparency, pytest.mark.timeout(300)]


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.name)
def test_library_doctests_pass_through_proxies(
    library, native_doctests, py_transparency, py_clean_host, tmp_path, tmp_path_factory
):
    packages = [native_doctests[package] for package in library.packages]
    ran = conftest.run_bridged(
        py_clean_host, py_transparency, packages, list(library.tops), tmp_path
    )
    pinned = library.requirement.partition("==")[2]
    for top, version in ran["versions"].items():
        # Otherwise its objects could cross by value, and this would not test the proxies.
        assert version != pinned, f"the host has {library.requirement} itself ({top})"
    outcomes = [Outcome(**outcome) for outcome in ran["outcomes"]]
    counted = [o for o in outcomes if o.native == "passed"]
    failed = [o for o in counted if o.bridged != "passed"]
    unexplained = [o for o in failed if (o.test, o.source.strip()) not in KNOWN_FAILURES]
    failing = {(o.test, o.source.strip()) for o in failed}
    fixed = [
        key
        for key in KNOWN_FAILURES
        if key not in failing and key[0].partition(".")[0] in library.packages
    ]
    lines = []
    for o in failed:
        reason = KNOWN_FAILURES.get((o.test, o.source.strip()), "NOT EXPLAINED")
        lines.append(f"{o.test} [{o.index}] >>> {o.source.strip()}")
        lines.append(f"    want {o.want.strip()!r}, got ({o.bridged}) {o.got.strip()[:300]!r}")
        lines.append(f"    why: {reason}")
    bridged = len(counted) - len(failed)
    folder = tmp_path_factory.getbasetemp()
    detail = "\n" + conftest.record(
        library.name, len(outcomes), len(counted), bridged, lines, folder
    )
    assert counted, f"none of the {len(outcomes)} examples of {library.name} passes natively"
    assert not unexplained, "failures without a known reason" + detail
    assert not fixed, f"known failures that pass now (remove them): {fixed}" + detail
    assert bridged / len(counted) >= SHARE_REQUIRED, detail
