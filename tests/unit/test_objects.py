"""ObjectTable: counts per export, release by count, statistics."""

from __future__ import annotations

import pytest

from mvbridge.core.objects import ObjectTable
from mvbridge.errors import StaleReferenceError


def test_same_object_keeps_its_id_and_counts_each_export():
    table = ObjectTable()
    thing = object()
    oid = table.export(thing)
    assert table.export(thing) == oid
    table.release([(oid, 1)])
    assert table.get(oid) is thing  # one reference still out
    table.release([(oid, 1)])
    with pytest.raises(StaleReferenceError):
        table.get(oid)
    stats = table.statistics()
    assert (stats.live_objects, stats.exported, stats.released) == (0, 2, 2)


def test_release_racing_a_resend_keeps_the_object():
    table = ObjectTable()
    thing = object()
    oid = table.export(thing)  # peer got it once, dropped it: release (oid, 1) on the way
    table.export(thing)  # sent again before the release arrived
    table.release([(oid, 1)])
    assert table.get(oid) is thing


def test_unknown_ids_are_ignored_on_release():
    table = ObjectTable()
    table.release([(12345, 1)])
    assert table.statistics().live_objects == 0
