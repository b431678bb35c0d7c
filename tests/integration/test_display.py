"""IPython's display hooks of remote objects: forwarded when the type has them, free when not."""

from __future__ import annotations

import sys

import pytest
from IPython.core.formatters import DisplayFormatter

import mvbridge
from tests.conftest import demo_source
from tests.helpers import install_fixture_package, make_venv


@pytest.fixture(scope="module")
def demo_v1(py_v1: str):
    with mvbridge.Env("display", interpreter=py_v1) as env:
        yield env.import_module("mvb_demo")


@pytest.fixture
def requests(demo_v1, monkeypatch):
    """The requests the proxies of ``demo_v1`` send from now on, as (op, operands)."""
    session = demo_v1._mvb_env.session()
    sent = []
    request = session.request

    def counting(op, target, *operands):
        sent.append((op, operands))
        return request(op, target, *operands)

    monkeypatch.setattr(session, "request", counting)
    return sent


def test_remote_display_hooks_are_forwarded(demo_v1):
    data, _ = DisplayFormatter().format(demo_v1.Rich())
    assert data["text/html"] == "<b>rich</b>"
    assert data["text/markdown"] == "**rich**"
    assert data["image/svg+xml"].startswith("<svg")
    assert data["image/png"] == b"\x89PNG\r\n\x1a\n"
    assert data["application/x-rich"] == "rich"
    assert data["text/plain"].startswith("<mvb_demo.Rich object")


def test_display_probes_of_types_without_hooks_cost_no_round_trip(demo_v1, requests):
    plain, method = demo_v1.sorted_map(), demo_v1.greet
    requests.clear()
    for value in (plain, method, demo_v1):
        data, _ = DisplayFormatter().format(value)
        assert list(data) == ["text/plain"]
    # One __repr__ for each proxy (the module's repr is local), nothing else.
    assert [op for op, _ in requests] == ["special", "special"]
    assert not hasattr(plain, "_ipython_canary_method_should_not_exist_")
    assert not hasattr(plain, "_repr_html_")
    assert len(requests) == 2


def test_proxy_of_a_mapping_offers_its_keys_for_completion(demo_v1):
    assert demo_v1.sorted_map()._ipython_key_completions_() == ["a", "b", "c"]


@pytest.fixture(scope="module")
def demo_ipython(tmp_path_factory):
    """A venv with IPython, where an object's own _ipython_display_ can run."""
    interpreter = make_venv(tmp_path_factory.mktemp("ipython"), sys.executable, ["ipython"])
    install_fixture_package(interpreter, "mvb_demo", "1.0", demo_source("1.0", "Hello"))
    with mvbridge.Env("display-ipython", interpreter=interpreter) as env:
        yield env.import_module("mvb_demo")


@pytest.mark.slow
def test_remote_ipython_display_is_shown_here(demo_ipython):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    try:
        with capture_output() as captured:
            InteractiveShell.instance().display_formatter.format(demo_ipython.SelfShown())
    finally:
        InteractiveShell.clear_instance()
    shown = [output.data for output in captured.outputs]
    assert shown[0] == {"text/html": "<i>self-shown</i>"}
    assert shown[1]["text/html"] == "<b>rich</b>"
    assert shown[1]["application/x-rich"] == "rich"
