"""Per-region login state: did Amazon accept Henpin's login in each SP-API region?

The adapter records, per region, the outcome of its latest call there: "ok" once Amazon answered,
"refused" when Login with Amazon refused the region's refresh token (e.g. `invalid_grant`) or
SP-API denied access (403 `Unauthorized`). It is one small JSON file per region in the data
folder (`HENPIN_HOME/region-auth/NA.json`), written only when the state changes, so
`henpin status` (another process than the runner's flows) can read it. A region no call went to
yet is "unchecked"; a watched region without credentials is "missing".
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from henpin.settings import Settings

AuthState = Literal["ok", "refused", "missing", "unchecked"]
FOLDER = "region-auth"
REWRITE_S = 60.0


class RegionAuthLog:
    """Where the adapter writes each region's login state (one file per region, atomic)."""

    def __init__(self, home: Path) -> None:
        self.folder = home / FOLDER
        self._last: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def record(self, region: str, state: Literal["ok", "refused"], detail: str = "") -> None:
        """Remember the region's latest outcome. The file is rewritten when the state changes,
        and at most once a minute while it stays (another process may have written another)."""
        with self._lock:
            last = self._last.get(region)
            if last is not None and last[0] == state and time.monotonic() - last[1] < REWRITE_S:
                return
            self._last[region] = (state, time.monotonic())
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{region}.json"
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            entry = {"auth": state, "at": datetime.now(UTC).isoformat(), "detail": detail[:500]}
            temporary.write_text(json.dumps(entry), encoding="utf-8")
            os.replace(temporary, path)

    def clear(self) -> None:
        """Forget every region's state (`henpin up` starts with "unchecked": the credentials
        may have changed since the last run)."""
        with self._lock:
            self._last.clear()
            for path in self.folder.glob("*.json"):
                path.unlink(missing_ok=True)

    def read(self, region: str) -> dict[str, Any] | None:
        """The region's recorded state, or None when no call went there yet."""
        path = self.folder / f"{region}.json"
        try:
            entry: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if entry.get("auth") in ("ok", "refused") else None


def region_status(settings: Settings, home: Path) -> dict[str, dict[str, Any]]:
    """`henpin status --json`'s `regions`: each region of a watched marketplace, with its
    watched marketplace ids and login state (ok, refused, missing or unchecked)."""
    log = RegionAuthLog(home)
    regions: dict[str, dict[str, Any]] = {}
    for region, marketplace_ids in settings.watched_regions.items():
        login = settings.region_login(region)
        entry: dict[str, Any] = {"marketplaces": marketplace_ids}
        if login is None or not login.seller_id:
            entry["auth"] = "missing"
        else:
            recorded = log.read(region)
            entry["auth"] = recorded["auth"] if recorded else "unchecked"
            if recorded and recorded["auth"] == "refused":
                entry["detail"] = recorded.get("detail", "")
                entry["since"] = recorded.get("at")
        regions[region] = entry
    return regions
