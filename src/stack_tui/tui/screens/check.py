"""Parity, drift and hygiene: the CheckReport as one table, failures first in each section."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from stack_tui.core.parity import SECTIONS, CheckReport
from stack_tui.tui.widgets.tables import SyncTable


class CheckTable(SyncTable):
    COLUMNS = (
        ("section", "section"),
        ("check", "check"),
        ("result", "result"),
        ("dev", "dev"),
        ("prod", "PROD"),
        ("detail", "detail"),
    )


class CheckScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back to both panes"),
        Binding("ctrl+r,R", "rerun", "Run the checks again", key_display="^r"),
    ]

    def __init__(
        self, report: CheckReport | None, running: bool, error: str, rerun: Callable[[], None]
    ) -> None:
        super().__init__()
        self.report, self.running, self.error = report, running, error
        self._rerun = rerun

    def compose(self) -> ComposeResult:
        yield Static(id="check-title")
        yield CheckTable(id="checks")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.report, self.running, self.error)
        self.query_one(CheckTable).focus()

    def show(self, report: CheckReport | None, running: bool, error: str) -> None:
        self.report, self.running, self.error = report, running, error
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
        self.query_one(CheckTable).sync(
            [
                (
                    f"{row.section}/{row.name}",
                    (
                        (row.section, "dim"),
                        (row.name, "bold"),
                        ("pass", "green") if row.ok else ("FAIL", "bold reverse red"),
                        (row.dev, ""),
                        (row.prod, ""),
                        (row.detail, ""),
                    ),
                )
                for row in rows
            ]
        )

    def action_rerun(self) -> None:
        self._rerun()
