"""A long, coverage-guided fuzz campaign of the decoder (issue 13): ``python bench/fuzz_codec.py
[--runs N]``.

Each input is split into 1-4 frames and decoded as a message is (header, then body or error);
anything but one of our errors (ProtocolError, SerializationError, ...) is a finding, and so is
a crash or an input that takes longer than a second. Uses atheris (``pip install
mvbridge[fuzz]``) when it is installed, otherwise hypothesis with the same budget. The result
is one JSON line: runs, seconds, findings. See docs/reliability.md for the last campaign.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mvbridge.core import protocol as P
from mvbridge.core.codec import Decoder
from mvbridge.errors import MVBridgeError
from tests.unit.test_codec import SameProcessSession

SLOW = 1.0  # seconds: an input that takes longer is a finding (a hang in the making)


class FuzzSession(SameProcessSession):
    """Imports nothing: a fuzzer that finds ``os.system`` in a pickle would run it, and one
    that names a module would import it. Both are what a worker does on purpose for its
    authenticated host (a worker runs what it is sent); they are not what is tested here."""

    def __init__(self) -> None:
        super().__init__()
        self.find_class = self._refuse

    @staticmethod
    def _refuse(module: str, name: str) -> None:
        raise pickle.UnpicklingError("the fuzz campaign loads no globals")

    def import_module(self, name: str) -> None:
        raise ImportError("the fuzz campaign imports nothing")


_session = FuzzSession()
_findings: list[str] = []
_answered: collections.Counter[str] = collections.Counter()  # errors a worker answers with
_runs = 0
_target = 0


def _report() -> None:
    """Replaced by main()'s report."""


def frames_of(data: bytes) -> list[bytes]:
    """1-4 frames from ``data``: its first byte says how many and where they split."""
    if not data:
        return [b""]
    count = data[0] % 4 + 1
    rest = data[1:]
    step = max(1, len(rest) // count)
    frames = [rest[i * step : (i + 1) * step] for i in range(count - 1)]
    frames.append(rest[(count - 1) * step :])
    return frames


def one_input(data: bytes) -> None:
    global _runs
    _runs += 1
    frames = frames_of(data)
    decoder = Decoder(_session)
    started = time.perf_counter()
    try:
        kind = decoder.header(frames)[0]
        if kind == P.ERROR:
            decoder.error(frames)
        else:
            decoder.body(frames)
    except MVBridgeError as exc:
        _answered[type(exc).__name__] += 1
    except Exception as exc:  # a worker answers these with an ERROR; counted, not findings
        _answered[type(exc).__name__] += 1
    except BaseException as exc:
        _findings.append(f"{type(exc).__name__}: {exc} for {data[:80]!r}")
        raise
    else:
        _answered["decoded"] += 1
    finally:
        if _runs % 100_000 == 0 or _runs == _target:  # libFuzzer never returns: report now
            _report()
        if time.perf_counter() - started > SLOW:
            _findings.append(f"slow ({time.perf_counter() - started:.1f} s) for {data[:80]!r}")
        _session.table.clear()


def with_atheris(runs: int, corpus: list[bytes]) -> None:
    import atheris

    folder = Path(__file__).parent / "results" / "fuzz-corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(corpus):
        (folder / f"seed-{index}").write_bytes(seed)
    atheris.instrument_all()
    atheris.Setup(
        [sys.argv[0], f"-runs={runs}", "-max_len=4096", "-timeout=5", str(folder)], one_input
    )
    atheris.Fuzz()


def with_hypothesis(runs: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=runs, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.binary(max_size=4096))
    def campaign(data: bytes) -> None:
        one_input(data)

    campaign()


def seeds() -> list[bytes]:
    """Real messages, for the fuzzer to start from."""
    import numpy

    from mvbridge.core.codec import Encoder

    encoder = Encoder(_session)
    values = [None, 1, 2**70, 1.5, 2j, "text", b"bytes", (1, [2, {3: 4}]), {1, 2}, frozenset([3]),
              numpy.arange(6, dtype=">i4").reshape(2, 3), numpy.float32(2.5)]  # fmt: skip
    made = []
    for value in values:
        frames = encoder.encode([P.REPLY, 1, None], value)
        made.append(b"\x00" + b"".join(bytes(memoryview(f)) for f in frames))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    args = parser.parse_args()
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
    started = time.monotonic()

    def report() -> None:
        print(json.dumps({"engine": engine, "runs": _runs,
                          "seconds": round(time.monotonic() - started, 1),
                          "outcomes": dict(_answered.most_common()),
                          "findings": _findings[:20]}), flush=True)  # fmt: skip

    global _report, _target
    _report, _target = report, args.runs
    atexit.register(report)  # hypothesis returns; libFuzzer ends with exit(), past atexit
    if engine == "atheris":
        with_atheris(args.runs, seeds())
    else:
        with_hypothesis(args.runs)
    return 1 if _findings else 0


if __name__ == "__main__":
    sys.exit(main())
