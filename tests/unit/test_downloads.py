"""Download lines of uv and pip become progress with sizes (#12, point 2)."""

from __future__ import annotations

import pytest

from mvbridge.bridge import downloads
from mvbridge.bridge.downloads import DownloadReporter


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Downloading numpy (16.1MiB)", ("numpy", 16.1 * 1024**2)),  # uv
        ("   Downloading pandas (12.4MiB)", ("pandas", 12.4 * 1024**2)),
        (
            "  Downloading pandas-2.2.2-cp311-cp311-manylinux_2_17_x86_64.whl (13.0 MB)",  # pip
            ("pandas", 13.0e6),
        ),
        ("  Downloading six-1.16.0-py2.py3-none-any.whl (11 kB)", ("six", 11e3)),
        (
            "  Downloading https://files.example/packages/ab/attrs-19.1.0.tar.gz (127kB)",
            ("attrs", 127e3),
        ),
        (" Downloaded numpy", None),  # uv's line when it is done
        ("Resolved 6 packages in 223ms", None),
        ("Processing /opt/wheels/numpy-1.26.4-cp311-cp311-linux_x86_64.whl", None),
    ],
)
def test_download_lines_of_uv_and_pip_are_parsed(line, expected):
    found = downloads.parse(line)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found[0] == expected[0]
        assert found[1] == pytest.approx(expected[1])


def test_each_download_is_said_with_the_total_so_far():
    said: list[str] = []
    report = DownloadReporter("big", said.append)
    for line in [
        "Resolved 2 packages",
        "Downloading numpy (16.0MiB)",
        "Downloading pandas (12.5MiB)",
    ]:
        report(line)
    assert said == [
        "env 'big': downloading numpy (16.0 MiB)",
        "env 'big': downloading pandas (12.5 MiB, 28.5 MiB so far)",
    ]
