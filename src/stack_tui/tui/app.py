"""The Textual application: wiring only. It owns the live session (stack_tui.live) and
republishes its changes on `session_changed`, to which screens subscribe. Screens live in
screens/, CSS in app.tcss."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.timer import Timer

from stack_tui.core.environments import label
from stack_tui.live.backend import Backend
from stack_tui.live.runs import Run
from stack_tui.live.session import Change, Session
from stack_tui.tui.screens.main import MainScreen

if TYPE_CHECKING:
    from stack_tui.ops.events import ConfirmationNeeded


class StackApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "stack-tui"
    BINDINGS = [Binding("question_mark", "help", "Help", tooltip="Every key of this screen")]

    def __init__(self, backend: Backend, *, read_only: bool = False) -> None:
        super().__init__()
        self.backend = backend
        self.read_only = read_only
        self.sub_title = "READ-ONLY: no deploy, backup or restore" if read_only else ""
        self.session = Session(backend, self)
        self.session_changed: Signal[Change] = Signal(self, "session-changed")
        #: Set when the session closes: every open operation question answers "no".
        self._questions_cancelled = asyncio.Event()

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(self.session, self.read_only)

    @property
    def main(self) -> MainScreen:
        """The bottom screen (tests and scripts look at its panes)."""
        return next(s for s in self.screen_stack if isinstance(s, MainScreen))

    # --- the session's Host -----------------------------------------------------------------

    def later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.set_timer(delay, callback)

    def in_thread(self, work: Callable[[], None], group: str) -> None:
        self.run_worker(work, thread=True, group=group, exit_on_error=False, name=group)

    def to_ui(self, callback: Callable[[], None]) -> None:
        self.call_later(callback)

    def after_paint(self, callback: Callable[[], None]) -> None:
        self.call_after_refresh(callback)

    def changed(self, change: Change) -> None:
        self.session_changed.publish(change)

    def ask(self, run: Run, question: ConfirmationNeeded) -> bool:
        """From the operation's worker thread: Textual's own push_screen_wait shows the
        question; the answer (or the session closing) resumes the thread."""
        if self.session.closing:
            return False
        answer: bool = self.call_from_thread(self._ask, run, question)  # type: ignore[arg-type]
        return answer

    async def _ask(self, run: Run, question: ConfirmationNeeded) -> bool:
        from stack_tui.tui import plans
        from stack_tui.tui.screens.confirm import ConfirmScreen

        dialog = ConfirmScreen(plans.operation_question(run.operation, question))
        answered = asyncio.ensure_future(self.push_screen_wait(dialog))
        closing = asyncio.ensure_future(self._questions_cancelled.wait())
        await asyncio.wait((answered, closing), return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if not answered.done():
            answered.cancel()
            return False
        return bool(answered.result())

    def close_session(self) -> None:
        self.session.close()
        self._questions_cancelled.set()

    # --- app-wide actions -------------------------------------------------------------------

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
        from stack_tui.tui import plans
        from stack_tui.tui.screens.confirm import ConfirmScreen

        running = [
            f"{run.operation} on {label(run.env)}" for run in self.session.running_operations()
        ]
        if not running:
            self._quit()
            return
        self.push_screen(
            ConfirmScreen(plans.quit_while_running(running)),
            lambda yes: self._quit() if yes else None,
        )

    def _quit(self) -> None:
        self.close_session()
        self.exit(0)

    def on_unmount(self) -> None:
        self.close_session()
