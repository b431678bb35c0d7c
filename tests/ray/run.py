"""Run the ray tests in a loopback-only network namespace: ``python tests/ray/run.py [ARGS]``.

Ray advertises the machine's own address and would talk to the network; in a namespace of our
own with only ``lo`` up, the cluster, the env builds and the calls all stay on 127.0.0.1, and
no package index can be reached. So the packages the tests' envs install are downloaded first,
here, into a folder the tests build from offline (``MVBRIDGE_TEST_WHEELS``).

Needs ``unshare`` and the right to make a network namespace (root, or a user namespace):
without them this fails, loudly, rather than skipping. Extra ARGS go to pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the tests' envs need besides the fixture wheel they build: numpy for arrays, an old
# protobuf (3.19: no google.protobuf.internal.builder, which Ray's generated code imports).
PACKAGES = ["protobuf==3.19.6"]


def fail(message: str) -> int:
    print(f"tests/ray/run.py: {message}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return fail("needs `unshare` (util-linux) and `ip` (iproute2) for a loopback-only network")
    try:
        import numpy
        import ray  # noqa: F401 - only checks it is there

        sys.path.insert(0, str(ROOT))
        from mvbridge.bridge.runtime import runtime_requirements
    except ImportError as exc:
        return fail(f"{exc}; install the test and ray extras: pip install -e '.[test,ray]'")
    wheels = Path(tempfile.mkdtemp(prefix="mvbridge-ray-wheels-"))
    try:
        download = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary", ":all:", "--dest", str(wheels),
            f"numpy=={numpy.__version__}", *PACKAGES, *runtime_requirements(),
        ]  # fmt: skip
        done = subprocess.run(download, timeout=600)
        if done.returncode != 0:
            return fail(f"downloading the envs' packages failed: {' '.join(download)}")
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            return fail(f"cannot make a network namespace: {probe.stderr.strip()}")
        environ = {
            **os.environ,
            "MVBRIDGE_TEST_WHEELS": str(wheels),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        command = [
            "unshare", "-n", "sh", "-c",
            'ip link set lo up && exec "$0" -m pytest -m ray -p no:cacheprovider tests/ray "$@"',
            sys.executable, *argv,
        ]  # fmt: skip
        return subprocess.run(command, cwd=ROOT, env=environ).returncode
    finally:
        shutil.rmtree(wheels, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
