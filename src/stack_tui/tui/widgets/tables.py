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

from stack_tui.core.backups import BackupInfo
from stack_tui.ops.status import ServiceStatus
from stack_tui.tui.widgets.cells import (
    BACKUP_COLUMNS,
    SERVICE_COLUMNS,
    Cell,
    Row,
    backup_rows,
    service_rows,
    taken_cell,
)


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


class ServicesTable(SyncTable):
    COLUMNS = SERVICE_COLUMNS

    def show(self, services: Sequence[ServiceStatus], now: float) -> None:
        self.sync(service_rows(services, now))


class BackupsTable(SyncTable):
    """A pane's backups, newest first, by the time they were taken."""

    COLUMNS = BACKUP_COLUMNS

    def first_cell(self, info: BackupInfo) -> Cell:
        return taken_cell(info)

    def show(self, items: Sequence[BackupInfo], now: float) -> None:
        self.sync(backup_rows(items, now, self.first_cell))


class BackupFilesTable(BackupsTable):
    """The restore picker's list: the file name is what the operator confirms."""

    COLUMNS = (("file", "backup file"), ("size", "size"), ("age", "age"), ("verified", "verified"))

    def first_cell(self, info: BackupInfo) -> Cell:
        return (info.name, "bold")
