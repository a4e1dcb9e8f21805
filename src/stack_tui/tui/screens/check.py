"""Parity, drift and hygiene: the CheckReport as one table, failures first in each section.

The table fits the terminal's width (long values are cut with "…"); the highlighted row is
shown in full below it, detail included.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from stack_tui.core.parity import SECTIONS, CheckRow
from stack_tui.live.session import Aspect, Change, Session
from stack_tui.tui.messages import session_changes
from stack_tui.tui.widgets.tables import SyncTable

#: Per column: one cell of padding each side; plus the table's vertical scrollbar.
CELL_PADDING, SCROLLBAR = 2, 2
#: dev and PROD never get narrower than this, even on a narrow terminal.
MIN_VALUE_WIDTH = 8


class CheckTable(SyncTable):
    COLUMNS = (
        ("section", "section"),
        ("check", "check"),
        ("result", "result"),
        ("dev", "dev"),
        ("prod", "PROD"),
    )


def value_width(rows: list[CheckRow], width: int) -> int:
    """How wide the dev and PROD columns may be for the table to fit `width` columns."""
    fixed = (
        max((len(row.section) for row in rows), default=7)
        + max((len(row.name) for row in rows), default=5)
        + len("result")
        + 5 * CELL_PADDING
        + SCROLLBAR
    )
    return max(MIN_VALUE_WIDTH, (width - fixed) // 2)


def cut(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def row_details(row: CheckRow) -> Text:
    """The highlighted check, every value in full."""
    verdict = ("pass", "green") if row.ok else (" FAIL ", "bold reverse red")
    text = Text.assemble((row.name, "bold"), "  ", verdict, (f"  ({row.section})", "dim"))
    for label, value in (("dev", row.dev), ("PROD", row.prod)):
        if value:
            text.append(f"\n{label}: ", style="bold")
            text.append(value)
    if row.detail:
        text.append(f"\n{row.detail}")
    return text


class CheckScreen(Screen[None]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back to both panes"),
        Binding("ctrl+r,R", "rerun", "Run the checks again", key_display="^r"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self._rows: dict[str, CheckRow] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="check-title")
        yield CheckTable(id="checks")
        with VerticalScroll(id="check-detail-box"):
            yield Static(id="check-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.query_one(CheckTable).focus()
        session_changes(self).subscribe(self, self._on_change, immediate=True)

    def _on_change(self, change: Change) -> None:
        if change.aspect is Aspect.CHECKS:
            self.show()

    def on_resize(self, event: events.Resize) -> None:
        self.show()

    def show(self) -> None:
        session = self.session
        report, running, error = session.checks, session.checks_running, session.checks_error
        if error:
            title = Text.assemble(("Checks could not run: ", "bold red"), error)
        elif report is None:
            title = Text("Running the checks…", style="dim")
        else:
            failing = sum(not row.ok for row in report.rows)
            title = (
                Text(f" {failing} of {len(report.rows)} checks FAILING ", style="bold reverse red")
                if failing
                else Text(f" all {len(report.rows)} checks pass ", style="bold reverse green")
            )
            if running:
                title.append("  (running again…)", style="dim")
        self.query_one("#check-title", Static).update(title)
        order = {section: index for index, section in enumerate(SECTIONS)}
        rows = sorted(
            report.rows if report else [],
            key=lambda row: (order.get(row.section, len(order)), row.ok),
        )
        self._rows = {f"{row.section}/{row.name}": row for row in rows}
        width = value_width(rows, self.size.width)
        table = self.query_one(CheckTable)
        table.sync(
            [
                (
                    key,
                    (
                        (row.section, "dim"),
                        (row.name, "bold"),
                        ("pass", "green") if row.ok else ("FAIL", "bold reverse red"),
                        (cut(row.dev, width), ""),
                        (cut(row.prod, width), ""),
                    ),
                )
                for key, row in self._rows.items()
            ]
        )
        self._show_details(table.cursor_key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_details(event.row_key.value)

    def _show_details(self, key: str | None) -> None:
        row = self._rows.get(key or "")
        self.query_one("#check-detail", Static).update(
            row_details(row) if row else Text("No check highlighted.", style="dim")
        )

    def action_rerun(self) -> None:
        self.session.run_checks()
