"""Follow one service's logs (`docker logs -f`) into a Log widget.

The stream blocks in a thread worker; a thread cannot be killed, so leaving
the screen closes the stream, which ends the worker's loop.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from stack_tui.core.environments import Environment
from stack_tui.core.errors import StackError
from stack_tui.tui.backend import Backend, LogStream
from stack_tui.tui.messages import LogLines
from stack_tui.tui.plans import label


class LogsScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to both panes")]

    def __init__(self, backend: Backend, env: Environment, service: str) -> None:
        super().__init__(classes="-prod" if env.is_prod else "")
        self.backend = backend
        self.env = env
        self.service = service
        self._stream: LogStream | None = None
        self._leaving = False

    def compose(self) -> ComposeResult:
        yield Static(
            f" {label(self.env)}  logs of {self.service} (following; Esc to leave)", id="logs-title"
        )
        yield Log(id="logs", highlight=False, max_lines=10_000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self.follow()

    @work(thread=True, exit_on_error=False, group="logs")
    def follow(self) -> None:
        try:
            stream = self.backend.logs(self.env, self.service)
        except StackError as err:
            self.post_message(LogLines([f"✗ {err.message}", err.hint]))
            return
        self._stream = stream
        if self._leaving:  # the screen went away while the stream was opening
            stream.close()
            return
        for line in stream:
            self.post_message(LogLines([line]))
        self.post_message(LogLines(["-- end of the log stream --"]))

    def on_log_lines(self, message: LogLines) -> None:
        self.query_one(Log).write_lines(message.lines)

    def on_unmount(self) -> None:
        self._leaving = True
        if self._stream is not None:
            self._stream.close()
