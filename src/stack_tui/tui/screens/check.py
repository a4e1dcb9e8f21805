"""Parity, drift and hygiene: the CheckReport as one table, failures first in each section."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from stack_tui.core.parity import SECTIONS
from stack_tui.live.session import Aspect, Change, Session
from stack_tui.tui.messages import session_changes
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

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Static(id="check-title")
        yield CheckTable(id="checks")
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.query_one(CheckTable).focus()
        session_changes(self).subscribe(self, self._on_change, immediate=True)

    def _on_change(self, change: Change) -> None:
        if change.aspect is Aspect.CHECKS:
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
        self.session.run_checks()
