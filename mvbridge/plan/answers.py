"""Resolver answers: memoised within a run, cached on disk across runs, counted.

Internal. A set of requirements is resolved at most once per run (the search asks for many
overlapping sets) and, within ``CACHE_TTL``, once per machine: answers are kept in the user
cache (``cache_dir()/plan``), one small JSON file per requirement set, keyed by the set (local
requirements by their files' content), the Python version and the resolver. Only verdicts are
cached, never failures to run. An entry expires because the index moves on: a new release can
make an unpinned set resolve differently.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..bridge.envs import tree_digest
from ..bridge.runtime import cache_dir
from ..config import is_local_requirement
from .resolvers import Answer, Resolver, Target

CACHE_TTL = 24 * 3600.0  # seconds an answer stays valid on disk


@dataclass(frozen=True)
class CheckerStatistics:
    """What a ``Checker`` has done so far.

    Attributes:
        asked: sets asked about (memo hits included).
        resolved: sets the resolver was run for.
        from_disk: sets answered by the disk cache.
        seconds: wall time spent in the resolver, summed over calls.
    """

    asked: int
    resolved: int
    from_disk: int
    seconds: float


class AnswerCache:
    """Answers on disk under ``folder``, valid for ``ttl`` seconds."""

    def __init__(self, folder: Path | None = None, ttl: float = CACHE_TTL) -> None:
        self.folder = folder if folder is not None else cache_dir() / "plan"
        self.ttl = ttl

    def key(self, requirements: Iterable[str], target: Target, resolver: str) -> str:
        """The cache key of one question: the set (order does not matter), Python, resolver."""
        parts = []
        for requirement in sorted(set(requirements)):
            if is_local_requirement(requirement) and Path(requirement).exists():
                requirement += "#" + tree_digest(Path(requirement))
            parts.append(requirement)
        text = json.dumps([1, resolver, target.version, parts])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get(self, key: str) -> Answer | None:
        path = self.folder / key[:2] / f"{key}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or time.time() - data.get("time", 0) > self.ttl:
            return None
        return Answer(data.get("resolved"), data.get("message", ""), cached=True)

    def put(self, key: str, requirements: Iterable[str], answer: Answer) -> None:
        path = self.folder / key[:2] / f"{key}.json"
        record = {
            "time": time.time(),
            "requirements": sorted(requirements),
            "resolved": answer.resolved,
            "message": answer.message,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "w") as file:
                json.dump(record, file)
            os.replace(temporary, path)  # readers see a whole entry or none
        except OSError:
            pass  # a cache that cannot be written only makes the next plan slower


class Checker:
    """Answers "does this set resolve?" for the search: memo, then disk, then the resolver.

    Thread-safe: the search asks about several sets at once. Two threads asking about one set
    at the same moment may both run the resolver; they get the same answer.
    """

    def __init__(
        self,
        resolver: Resolver,
        target: Target,
        cache: AnswerCache | None = None,
        refresh: bool = False,
    ) -> None:
        self.resolver = resolver
        self.target = target
        self.cache = cache if cache is not None else AnswerCache()
        self.refresh = refresh
        self._memo: dict[frozenset[str], Answer] = {}
        self._lock = threading.Lock()
        self._asked = self._resolved = self._from_disk = 0
        self._seconds = 0.0

    def check(self, requirements: Iterable[str]) -> Answer:
        """The resolver's answer for ``requirements`` together.

        Raises:
            EnvBuildError: the resolver failed to run (not: found a conflict).
        """
        wanted = frozenset(requirements)
        with self._lock:
            self._asked += 1
            known = self._memo.get(wanted)
        if known is not None:
            return known
        key = self.cache.key(wanted, self.target, self.resolver.name)
        answer = None if self.refresh else self.cache.get(key)
        if answer is not None:
            with self._lock:
                self._from_disk += 1
        else:
            started = time.monotonic()
            answer = self.resolver.resolve(sorted(wanted), self.target)
            with self._lock:
                self._resolved += 1
                self._seconds += time.monotonic() - started
            self.cache.put(key, wanted, answer)
        with self._lock:
            self._memo[wanted] = answer
        return answer

    def statistics(self) -> CheckerStatistics:
        with self._lock:
            return CheckerStatistics(
                self._asked, self._resolved, self._from_disk, round(self._seconds, 3)
            )
