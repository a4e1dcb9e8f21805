"""One environment's deploys and rollbacks, newest first; roll back from here.

The table says what each did (result, who, what changed); the panel below it,
for the highlighted record, what changed per service and the backup taken
before. `u` rolls back to before the highlighted record, `U` also restores that
backup; the rollback operation then asks its own confirmation, as a deploy's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from stack_tui.core.environments import Environment, label
from stack_tui.core.records import Record


@dataclass(frozen=True)
class RollbackChoice:
    record: str
    with_data: bool


class HistoryScreen(ModalScreen[RollbackChoice | None]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("u", "rollback(False)", "Roll back to before this"),
        Binding("U", "rollback(True)", "…with its data"),
    ]

    def __init__(self, env: Environment, found: list[Record], read_only: bool) -> None:
        super().__init__(classes="-prod" if env.is_prod else "")
        self.env = env
        self.found = {record.id: record for record in found}
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Deploy history of {label(self.env)} ({self.env.project})", id="title")
            yield DataTable(id="records", cursor_type="row", zebra_stripes=True)
            yield Static(id="record-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("record", "when", "result", "changed", "by")
        for record in self.found.values():
            result = f"{record.operation} {record.result}" if record.undoes else record.result
            changed = ", ".join(record.changed_services()) or "-"
            table.add_row(
                record.id,
                time.strftime("%m-%d %H:%M", time.localtime(record.started)),
                result,
                changed,
                record.who(),
                key=record.id,
            )
        if not self.found:
            self.query_one("#record-detail", Static).update(
                f"No deploy of {self.env.name} recorded yet: each deploy from now on is."
            )
        table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "rollback" and (self.read_only or not self.found))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        record = self.found.get(str(event.row_key.value))
        if record is None:
            return
        lines = [*record.change_lines(), f"backup before: {record.backup or 'none'}"]
        if record.summary and record.result != "ok":
            lines.append(record.summary)
        if not self.read_only:
            lines.append("u: roll back to before this record; U: also restore that backup.")
        self.query_one("#record-detail", Static).update("\n".join(lines))

    def action_rollback(self, with_data: bool) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self.dismiss(RollbackChoice(str(key), with_data))

    def action_close(self) -> None:
        self.dismiss(None)
