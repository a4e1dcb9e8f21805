"""Tables that change only the cells that changed.

Every `update_cell` invalidates DataTable's render cache and `clear()` loses the
cursor, so a refresh compares first: same rows, same order -> touch only the
differing cells; otherwise rebuild and put the cursor back on the same key.
Cells are (text, style) pairs so equality includes the style (rich's Text
equality ignores a Text's base style).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from rich.text import Text
from textual.widgets import DataTable

from stack_tui.core.backups import BackupInfo, human_size
from stack_tui.ops.status import ServiceStatus

Cell = tuple[str, str]
Row = tuple[str, tuple[Cell, ...]]


class SyncTable(DataTable[Text]):
    """A DataTable fed whole snapshots, keyed by a stable row key."""

    COLUMNS: tuple[tuple[str, str], ...] = ()

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}
        for key, title in self.COLUMNS:
            self.add_column(title, key=key)

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    @property
    def cursor_key(self) -> str | None:
        if not self._keys or not 0 <= self.cursor_row < len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def sync(self, rows: Sequence[Row]) -> None:
        keys = [key for key, _ in rows]
        if keys != self._keys:
            self._rebuild(rows)
            return
        columns = [key for key, _ in self.COLUMNS]
        for key, cells in rows:
            old = self._cells[key]
            for index, cell in enumerate(cells):
                if old[index] != cell:
                    self.update_cell(key, columns[index], Text(*cell), update_width=True)
            self._cells[key] = cells

    def _rebuild(self, rows: Sequence[Row]) -> None:
        keep = self.cursor_key
        self.clear()
        for key, cells in rows:
            self.add_row(*(Text(*cell) for cell in cells), key=key)
        self._keys = [key for key, _ in rows]
        self._cells = dict(rows)
        if keep in self._keys:
            self.move_cursor(row=self._keys.index(keep), animate=False, scroll=False)


def state_cell(row: ServiceStatus) -> Cell:
    if row.state == "running":
        return ("running", "green")
    if row.state in ("created", "paused", "restarting"):
        return (row.state, "bold yellow")
    return (row.state.upper(), "bold red")


def health_cell(row: ServiceStatus) -> Cell:
    if row.health == "healthy":
        return ("healthy", "green")
    if row.health == "starting":
        return ("starting", "yellow")
    if row.health:
        return (row.health.upper(), "bold red")
    return ("-", "dim")


def short_image(image: str) -> str:
    """`ghcr.io/open-webui/open-webui:main` -> `open-webui:main`: the tag is what differs."""
    return image.rsplit("/", 1)[-1]


def up_since(started: float | None, now: float) -> str:
    """When a running container started: "06:18" today, "27 Nov" before. A clock time, not
    a duration, so the cell stays true without redrawing (only midnight changes it)."""
    if started is None:
        return "-"
    start, today = datetime.fromtimestamp(started), datetime.fromtimestamp(now)
    return start.strftime("%H:%M") if start.date() == today.date() else start.strftime("%d %b")


def coarse_age(seconds: float) -> str:
    """A backup's age at a glance ("<1h", "5h", "3d"); the exact time is in the next column."""
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return "<1h"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def _coarse_age_changes_in(seconds: float) -> float:
    step = 3600 if seconds < 86400 else 86400
    return step - max(0.0, seconds) % step


def next_redraw(started: Sequence[float], taken: Sequence[float], now: float) -> float | None:
    """Seconds until one of these cells reads differently: a backup's coarse age (hourly at
    most) or an up-since time crossing midnight. None when nothing shown can change."""
    waits = [_coarse_age_changes_in(now - at) for at in taken]
    today = datetime.fromtimestamp(now)
    if any(datetime.fromtimestamp(at).date() == today.date() for at in started):
        midnight = datetime.combine(today.date() + timedelta(days=1), datetime.min.time())
        waits.append(time.mktime(midnight.timetuple()) - now)
    return min(waits) if waits else None


class ServicesTable(SyncTable):
    COLUMNS = (
        ("service", "service"),
        ("state", "state"),
        ("health", "health"),
        ("since", "up since"),
        ("image", "image"),
    )

    def show(self, services: Sequence[ServiceStatus], now: float) -> None:
        self.sync(
            [
                (
                    row.service,
                    (
                        (row.service, "bold"),
                        state_cell(row),
                        health_cell(row),
                        (up_since(row.started if row.state == "running" else None, now), ""),
                        (short_image(row.image) or "-", ""),
                    ),
                )
                for row in services
            ]
        )


def verified_cell(info: BackupInfo) -> Cell:
    if info.verified is True:
        return ("ok", "green")
    if info.verified is False:
        return ("FAILED", "bold red")
    return ("-", "dim")


class BackupsTable(SyncTable):
    """A pane's backups, newest first, by the time they were taken."""

    COLUMNS = (("taken", "taken"), ("size", "size"), ("age", "age"), ("verified", "verified"))

    def first_cell(self, info: BackupInfo) -> Cell:
        return (info.taken.strftime("%Y-%m-%d %H:%M:%S"), "")

    def show(self, items: Sequence[BackupInfo], now: float) -> None:
        self.sync(
            [
                (
                    str(info.path),
                    (
                        self.first_cell(info),
                        (human_size(info.size), ""),
                        (coarse_age(now - info.taken.timestamp()), ""),
                        verified_cell(info),
                    ),
                )
                for info in items
            ]
        )


class BackupFilesTable(BackupsTable):
    """The restore picker's list: the file name is what the operator confirms."""

    COLUMNS = (("file", "backup file"), ("size", "size"), ("age", "age"), ("verified", "verified"))

    def first_cell(self, info: BackupInfo) -> Cell:
        return (info.name, "bold")
