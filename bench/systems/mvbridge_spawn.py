"""mvbridge through a ``mvbridge spawn`` service: not built yet, so every measure is n/a."""

from __future__ import annotations

from .base import System


class MvbridgeSpawn(System):
    key = "mvbridge_spawn"
    label = "mvbridge via spawn (service)"
    notes = ""

    def cannot_run(self) -> str | None:
        return "service mode not built yet"
