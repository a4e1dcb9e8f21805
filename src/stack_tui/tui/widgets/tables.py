"""Tables that change only the cells that changed.

Every `update_cell` invalidates DataTable's render cache and `clear()` loses the
cursor, so a refresh compares first: same rows, same order -> touch only the
differing cells; otherwise rebuild and put the cursor back on the same key.
Cells are (text, style) pairs so equality includes the style (rich's Text
equality ignores a Text's base style).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from stack_tui.core.backups import BackupInfo, human_size
from stack_tui.ops.status import ServiceStatus, human_duration

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


class ServicesTable(SyncTable):
    COLUMNS = (("service", "service"), ("state", "state"), ("health", "health"),
               ("uptime", "uptime"), ("image", "image"))

    def show(self, services: Sequence[ServiceStatus], now: float) -> None:
        self.sync([
            (row.service, (
                (row.service, "bold"),
                state_cell(row),
                health_cell(row),
                (row.uptime(now) or "-", ""),
                (short_image(row.image) or "-", ""),
            ))
            for row in services
        ])


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
        self.sync([
            (str(info.path), (
                self.first_cell(info),
                (human_size(info.size), ""),
                (human_duration(now - info.taken.timestamp()), ""),
                verified_cell(info),
            ))
            for info in items
        ])


class BackupFilesTable(BackupsTable):
    """The restore picker's list: the file name is what the operator confirms."""

    COLUMNS = (("file", "backup file"), ("size", "size"), ("age", "age"),
               ("verified", "verified"))

    def first_cell(self, info: BackupInfo) -> Cell:
        return (info.name, "bold")
