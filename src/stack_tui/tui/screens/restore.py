"""Pick the backup to restore into one environment, newest first.

Only that environment's backups by default; `a` adds the other environment's
(a cross-environment restore, which the restore operation refuses unless the
TUI passes the explicit allowance and the operator then types the name).

When off-host copies are configured, the repository is asked in a worker once
the picker is shown (it may take seconds over the network); copies that are
not on this host are added, marked "off-host": restoring one fetches it into
data/backups/ first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from stack_tui.core.backups import BackupInfo
from stack_tui.core.environments import Environment, label
from stack_tui.core.errors import StackError
from stack_tui.tui.widgets.cells import Cell
from stack_tui.tui.widgets.tables import BackupFilesTable

OffsiteLister = Callable[[], list[BackupInfo] | None]


@dataclass(frozen=True)
class Pick:
    path: Path
    cross_env: bool
    offsite: bool = False  # only off-host: fetch it first


class PickerTable(BackupFilesTable):
    """The backup files, with the ones only off-host marked."""

    offsite_only: frozenset[str] = frozenset()

    def first_cell(self, info: BackupInfo) -> Cell:
        if str(info.path) in self.offsite_only:
            return (f"{info.name} off-host", "bold cyan")
        return super().first_cell(info)


class RestorePicker(ModalScreen[Pick | None]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("a", "toggle_other", "Other env's backups too"),
    ]

    def __init__(
        self,
        env: Environment,
        own: list[BackupInfo],
        other: list[BackupInfo],
        now: float,
        list_offsite: OffsiteLister | None = None,
    ) -> None:
        super().__init__(classes="-prod" if env.is_prod else "")
        self.env = env
        self.own, self.other = own, other
        self.now = now
        self.with_other = False
        self.warned: Path | None = None  # a failed-drill backup the operator was warned about
        self.list_offsite = list_offsite
        self.remote: list[BackupInfo] = []  # off-host copies not on this host

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                f"Restore {label(self.env)} ({self.env.db_name}): pick a backup", id="title"
            )
            yield Static(id="hint")
            yield PickerTable(id="choices")
            yield Static(id="drill")
        yield Footer()

    def on_mount(self) -> None:
        self._show()
        self.query_one(PickerTable).focus()
        if self.list_offsite is not None:
            self._ask_offsite(self.list_offsite)

    @work(thread=True, group="offsite-list", exit_on_error=False)
    def _ask_offsite(self, list_offsite: OffsiteLister) -> None:
        try:
            found, problem = list_offsite(), ""
        except StackError as err:
            found, problem = [], f"{err.message} {err.hint}".strip()
        if found is None:
            return  # off-host copies are off: nothing to say
        self.app.call_from_thread(self._offsite_listed, found, problem)

    def _offsite_listed(self, found: list[BackupInfo], problem: str) -> None:
        if not self.is_attached:  # picked or cancelled before the repository answered
            return
        local = {info.name for info in (*self.own, *self.other)}
        self.remote = [info for info in found if info.name not in local]
        self.query_one(PickerTable).offsite_only = frozenset(str(i.path) for i in self.remote)
        if problem:
            note = f"Off-host copies could not be listed: {problem}"
        else:
            copies = "1 off-host copy" if len(found) == 1 else f"{len(found)} off-host copies"
            note = (
                f"{copies}; those marked off-host are only there: restoring one fetches it first."
            )
        self.query_one("#dialog").mount(Static(note, id="offsite-note"), after="#hint")
        self._show()

    def _show(self) -> None:
        remote_own = [info for info in self.remote if info.env == self.env.name]
        remote_other = [info for info in self.remote if info.env != self.env.name]
        shown = sorted(
            [*self.own, *remote_own, *((*self.other, *remote_other) if self.with_other else ())],
            key=lambda b: (b.taken, b.name),
            reverse=True,
        )
        self.query_one(PickerTable).show(shown, self.now)
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

    def _info(self, key: object) -> BackupInfo | None:
        return next((i for i in [*self.own, *self.other] if str(i.path) == str(key)), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted backup's drill, in full: "drilled ok 2h ago, 41 s" or the failure."""
        info = self._info(event.row_key.value)
        if info is None:
            return
        drill = info.drill
        if drill is None:
            text = Text(
                f"{info.name}: never drilled (./stack backup drill FILE proves it restores)",
                style="dim",
            )
        else:
            text = Text(
                f"{info.name}: {drill.summary(self.now)}", style="green" if drill.ok else "bold red"
            )
        self.query_one("#drill", Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        path = Path(str(event.row_key.value))
        info = self._info(path)
        if (
            info is not None
            and info.drill is not None
            and not info.drill.ok
            and self.warned != path
        ):
            self.warned = path
            self.query_one("#hint", Static).update(
                Text.assemble(
                    (" WARNING ", "bold reverse red"),
                    (
                        f" {info.name} FAILED its restore drill: {info.drill.reason}. "
                        "Enter again to restore it anyway; Esc to pick another.",
                        "bold red",
                    ),
                )
            )
            return
        own = {str(info.path) for info in self.own}
        own |= {str(info.path) for info in self.remote if info.env == self.env.name}
        remote = {str(info.path) for info in self.remote}
        self.dismiss(Pick(path, cross_env=str(path) not in own, offsite=str(path) in remote))

    def action_cancel(self) -> None:
        self.dismiss(None)
