"""Pick the backup to restore into one environment, newest first.

Only that environment's backups by default; `a` adds the other environment's
(a cross-environment restore, which the restore operation refuses unless the
TUI passes the explicit allowance and the operator then types the name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from stack_tui.core.backups import BackupInfo
from stack_tui.core.environments import Environment
from stack_tui.tui.plans import label
from stack_tui.tui.widgets.tables import BackupFilesTable


@dataclass(frozen=True)
class Pick:
    path: Path
    cross_env: bool


class RestorePicker(ModalScreen[Pick | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("a", "toggle_other", "Other env's backups too"),
    ]

    def __init__(
        self, env: Environment, own: list[BackupInfo], other: list[BackupInfo], now: float
    ) -> None:
        super().__init__(classes="-prod" if env.is_prod else "")
        self.env = env
        self.own, self.other = own, other
        self.now = now
        self.with_other = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                f"Restore {label(self.env)} ({self.env.db_name}): pick a backup", id="title"
            )
            yield Static(id="hint")
            yield BackupFilesTable(id="choices")
        yield Footer()

    def on_mount(self) -> None:
        self._show()
        self.query_one(BackupFilesTable).focus()

    def _show(self) -> None:
        shown = sorted(
            [*self.own, *(self.other if self.with_other else [])],
            key=lambda b: (b.taken, b.name),
            reverse=True,
        )
        self.query_one(BackupFilesTable).show(shown, self.now)
        other = "dev" if self.env.is_prod else "PROD"
        if not shown:
            hint = f"No {self.env.name} backups yet. Esc, then b takes one."
        elif self.with_other:
            hint = (
                f"Showing {label(self.env)} and {other} backups. Restoring a {other} backup "
                f"into {label(self.env)} is a cross-environment restore."
            )
        else:
            hint = (
                f"Enter restores the highlighted backup into {self.env.db_name} "
                "(you will confirm first). a: show the other environment's backups too."
            )
        self.query_one("#hint", Static).update(hint)

    def action_toggle_other(self) -> None:
        self.with_other = not self.with_other
        self._show()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        path = Path(str(event.row_key.value))
        own = {str(info.path) for info in self.own}
        self.dismiss(Pick(path, cross_env=str(path) not in own))

    def action_cancel(self) -> None:
        self.dismiss(None)
