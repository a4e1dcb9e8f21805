"""The Textual application: wiring only. Screens live in screens/, CSS in app.tcss."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from stack_tui.tui import plans
from stack_tui.tui.backend import Backend
from stack_tui.tui.screens.main import MainScreen


class StackApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "stack-tui"
    BINDINGS = [Binding("question_mark", "help", "Help", tooltip="Every key of this screen")]

    def __init__(self, backend: Backend, *, read_only: bool = False) -> None:
        super().__init__()
        self.backend = backend
        self.read_only = read_only
        self.sub_title = "READ-ONLY: no deploy, backup or restore" if read_only else ""

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(self.backend, self.read_only)

    @property
    def main(self) -> MainScreen:
        return next(s for s in self.screen_stack if isinstance(s, MainScreen))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every key of the screen is a command too (read-only mode drops the same ones)."""
        from stack_tui.tui.screens.help import key_rows

        yield from super().get_system_commands(screen)
        for row in key_rows(screen):
            if row.action not in ("quit", "app.quit"):  # Textual already offers Quit
                yield SystemCommand(
                    row.description,
                    f"{row.tooltip} (key {row.keys})".lstrip(),
                    partial(self.run_action, row.action, row.node),
                )

    def action_help(self) -> None:
        from stack_tui.tui.screens.help import HelpScreen, key_rows

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(key_rows(self.screen), self.read_only))

    async def action_quit(self) -> None:
        from stack_tui.tui.screens.confirm import ConfirmScreen

        running = self.main.running_operations()
        if not running:
            self.exit(0)
            return
        self.push_screen(
            ConfirmScreen(plans.quit_while_running(running)),
            lambda yes: self.exit(0) if yes else None,
        )
