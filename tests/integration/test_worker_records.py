"""Worker log records and warnings reach the host's logging and warnings (issue 12, point 4)."""

from __future__ import annotations

import io
import logging
import sys

import pytest

import mvbridge
from mvbridge.bridge.records import RecordReader
from mvbridge.core import protocol as P
from tests.helpers import install_fixture_package, wait_until


@pytest.fixture(scope="module")
def records_env(py_v1: str):
    with mvbridge.Env("records", interpreter=py_v1) as env:
        yield env


def _warns(category, match, call, until=lambda: True):
    """Run ``call`` and wait, within ``pytest.warns``, until its warning has come (records
    arrive on the worker's stderr, after the reply) and ``until()`` holds."""
    with pytest.warns(category, match=match) as warned:
        _call_then_wait(call, lambda: len(warned) and until())
    return warned


def _call_then_wait(call, predicate):
    call()
    wait_until(predicate)


def _worker_records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def test_worker_log_records_reach_host_logging_at_worker_root_level(
    records_env, caplog, monkeypatch
):
    demo = records_env.import_module("mvb_demo")
    caplog.set_level(logging.DEBUG, logger="mvbridge.worker")
    # The worker's output is forwarded to the host's sys.stdout and sys.stderr as they are when
    # it arrives. Read here without consuming: polling capfd.readouterr() lost a line that the
    # forwarder thread wrote between its read and its truncate (a failed CI run).
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    warned = _warns(
        DeprecationWarning,
        "deprecated: one",
        lambda: demo.log_and_warn("one"),
        lambda: _worker_records(caplog, "warning: one"),
    )
    (record,) = _worker_records(caplog, "warning: one")
    assert record.name == "mvbridge.worker.records.mvb_demo.talk"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "warning: one"
    assert record.worker_logger == "mvb_demo.talk"
    assert record.env == "records"
    assert record.process == record.worker != 0
    # The worker's root logger is at WARNING (Python's default): its DEBUG record stays there.
    assert not _worker_records(caplog, "debug: one")
    assert "mvb_demo" in warned[0].filename
    # print output keeps reaching stdout, and no record is printed raw.
    wait_until(lambda: "printed: one" in out.getvalue())
    assert P.RECORD_PREFIX not in err.getvalue()


def test_worker_debug_records_follow_the_worker_root_level(records_env, caplog):
    caplog.set_level(logging.DEBUG, logger="mvbridge.worker")
    records_env.call(lambda: __import__("logging").getLogger().setLevel(10))
    try:
        demo = records_env.import_module("mvb_demo")
        _warns(
            DeprecationWarning,
            "deprecated: two",
            lambda: demo.log_and_warn("two"),
            lambda: _worker_records(caplog, "debug: two"),
        )
    finally:
        records_env.call(lambda: __import__("logging").getLogger().setLevel(30))
    (record,) = _worker_records(caplog, "debug: two")
    assert record.levelno == logging.DEBUG


def test_host_logger_level_drops_worker_records_below_it(records_env, caplog):
    caplog.set_level(logging.ERROR, logger="mvbridge.worker")
    demo = records_env.import_module("mvb_demo")
    demo.log_error("three")
    # One pipe, in order: the warning comes after the WARNING record it would follow.
    _warns(DeprecationWarning, "deprecated: four", lambda: demo.log_and_warn("four"))
    (record,) = _worker_records(caplog, "failed: three")
    assert "ValueError: three" in record.exc_text
    assert "Traceback" in logging.Formatter().format(record)
    assert not _worker_records(caplog, "warning: four")


def test_worker_warning_of_a_category_the_host_lacks_is_a_user_warning(records_env):
    demo = records_env.import_module("mvb_demo")
    warned = _warns(
        UserWarning, r"mvb_demo\.DemoWarning: own kind", lambda: demo.warn_own("own kind")
    )
    assert warned[0].category is UserWarning


def test_a_record_logged_while_logging_is_first_imported_reaches_the_host(py_v1, caplog):
    """A worker imports ``logging`` only when something does (it was 4-7 ms of its start-up):
    the forwarding starts then, in time for a record logged by the very module that did."""
    install_fixture_package(
        py_v1, "mvb_logging_unseen", "1.0", "import sys\nSEEN = 'logging' in sys.modules\n"
    )
    install_fixture_package(
        py_v1,
        "mvb_logs_at_import",
        "1.0",
        "import logging\nlogging.getLogger(__name__).warning('logged while imported')\n",
    )
    caplog.set_level(logging.DEBUG, logger="mvbridge.worker")
    with mvbridge.Env("records-at-import", interpreter=py_v1) as env:
        assert env.import_module("mvb_logging_unseen").SEEN is False
        env.import_module("mvb_logs_at_import")
        wait_until(lambda: _worker_records(caplog, "logged while imported"))
    (record,) = _worker_records(caplog, "logged while imported")
    assert record.name.endswith(".mvb_logs_at_import")
    assert record.levelno == logging.WARNING


def test_record_reader_passes_output_through_and_waits_for_split_records():
    out: list[str] = []
    reader = RecordReader("split", 1, out.append)
    line = P.RECORD_PREFIX + '{"kind": "log", "name": "x", "level": 50, "message": "m"}\n'
    reader.feed("before " + line[:5])
    reader.feed(line[5:20])
    reader.feed(line[20:] + "after\n")
    reader.feed("tail without newline")
    reader.close()
    assert "".join(out) == "before after\ntail without newline"


def test_service_logs_worker_records_itself(service, keys, tmp_path):
    with mvbridge.Env("svc-records", address=service.address, **keys.env_kwargs()) as env:
        demo = env.import_module("mvb_demo")
        demo.log_and_warn("five")
        wait_until(lambda: "warning: five" in service.log and "deprecated: five" in service.log)
    line = next(x for x in service.log.splitlines() if "warning: five" in x)
    assert "WARNING [mvbridge.worker.svc.mvb_demo.talk]" in line, line
