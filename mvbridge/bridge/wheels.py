"""Whether an env installs from wheels alone, and which installed Python lets it.

Internal. mvbridge installs from wheels unless an env allows building (``allow_build``): a
requirement with no wheel for the env's Python is named before anything is built, together with
the installed Pythons that do have wheels for it, instead of a long compile that ends in the
tail of a compiler log. ``python = "auto"`` picks the newest installed Python on which every
requirement has a wheel. The check is uv's own resolution with ``--only-binary :all:
--dry-run``: metadata only, nothing is installed (local folders are the user's own code and are
built as always). Without uv there is no check.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence

from ..errors import EnvBuildError
from .installers import BUILD_TIMEOUT, find_uv

# Newest first: "auto" takes the first that fits.
MINORS = tuple("3.%d" % minor for minor in range(14, 7, -1))
_NO_WHEEL = re.compile(r"(\S+?) has no usable wheels")
_NO_BUILD = "building from source is disabled"


def missing_wheels(python: str, requirements: Sequence[str]) -> list[str] | None:
    """The requirements (as the resolver names them, ``pandas==2.0.3``) that have no wheel for
    ``python``: empty when all do, None when that cannot be told (no uv, or another failure,
    which the install itself then reports)."""
    uv = find_uv()
    if uv is None or not requirements:
        return None if uv is None else []
    # compile, not install --dry-run: the interpreter gives markers and tags only, never its
    # own site-packages (installed packages would pass; a system Python is refused as
    # externally managed).
    command = [uv, "pip", "compile", "--only-binary", ":all:", "--python", python]
    try:
        done = subprocess.run(
            [*command, "--no-header", "--quiet", "-"],
            input="\n".join(requirements) + "\n",
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode == 0:
        return []
    text = done.stderr
    found = sorted(set(_NO_WHEEL.findall(text)))
    if found:
        return [name.strip("`") for name in found]
    return None if _NO_BUILD not in text.lower() else ["some requirement"]


def installed_pythons() -> list[tuple[str, str]]:
    """``(minor, interpreter)`` of every working Python 3.8+ found here, newest first."""
    from .envs import find_interpreter

    found = []
    for minor in MINORS:
        try:
            found.append((minor, find_interpreter(minor)))
        except EnvBuildError:
            continue
    return found


def with_wheels(requirements: Sequence[str], skip: str | None = None) -> list[str]:
    """The installed minors on which every requirement has a wheel, newest first."""
    return [
        minor
        for minor, interpreter in installed_pythons()
        if minor != skip and missing_wheels(interpreter, requirements) == []
    ]


def auto_interpreter(
    env_name: str, requirements: Sequence[str], allow_build: bool, say: Callable[[str], None]
) -> str:
    """The interpreter ``python = "auto"`` means for these requirements.

    Raises:
        EnvBuildError: uv is missing, or no installed Python has wheels for every requirement
            (and building is not allowed).
    """
    if find_uv() is None:
        raise EnvBuildError(
            f'env {env_name!r}: python = "auto" needs uv to tell which Python has wheels; '
            'install uv (pip install uv) or give a version such as python = "3.11"',
            env=env_name,
        )
    pythons = installed_pythons()
    tried = []
    answers = []
    for minor, interpreter in pythons:
        missing = missing_wheels(interpreter, requirements)
        if missing == []:
            say(f'env {env_name!r}: python = "auto" chose Python {minor}, the newest with wheels')
            return interpreter
        answers.append(missing)
        tried.append(f"{minor} (no wheel: {', '.join(missing or ['unknown'])})")
    if pythons and all(answer is None for answer in answers):
        # Nothing could be told (a name not on the index, no network): the install says why.
        return pythons[0][1]
    if allow_build and pythons:
        newest = pythons[0][0]
        say(f'env {env_name!r}: python = "auto": no Python has every wheel; building on {newest}')
        return pythons[0][1]
    raise EnvBuildError(
        f'env {env_name!r}: python = "auto" found no installed Python on which every '
        f"requirement has a wheel; tried {'; '.join(tried) or 'none found'}. Install a Python "
        "that has them, or set allow_build = true to compile (this can take many minutes)",
        env=env_name,
    )


def no_wheel_error(
    env_name: str, minor: str, missing: list[str], requirements: Sequence[str]
) -> EnvBuildError:
    """The error for an env whose requirements lack wheels on its Python, with what to do."""
    others = with_wheels(requirements, skip=minor)
    where = (
        f'python = "{others[0]}" (installed here, and it has them) or python = "auto"'
        if others
        else "a Python that has them"
    )
    return EnvBuildError(
        f"env {env_name!r}: {', '.join(missing)} has no wheel for CPython {minor}, and "
        f"mvbridge installs from wheels unless allowed to build. Use {where}, or set "
        "allow_build = true to compile it from source (this can take many minutes)",
        env=env_name,
    )
