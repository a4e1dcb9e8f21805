"""Messages from thread workers to the UI (post_message is thread-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from stack_tui.ops.events import Event
from stack_tui.ops.status import EnvStatus
from stack_tui.tui.runs import Run

if TYPE_CHECKING:
    from stack_tui.core.parity import CheckReport


class EnvChanged(Message):
    """Something about `env` changed (engine event, lock or backup file): refresh it."""

    def __init__(self, env: str) -> None:
        super().__init__()
        self.env = env


class StatusFetched(Message):
    def __init__(self, status: EnvStatus) -> None:
        super().__init__()
        self.status = status


class EngineDown(Message):
    def __init__(self, error: str, hint: str) -> None:
        super().__init__()
        self.error = error
        self.hint = hint


class EngineUp(Message):
    """The engine answers again: re-list everything."""


class OperationEvent(Message):
    """One event of a running operation (ours, or another process's being followed)."""

    def __init__(self, run: Run, event: Event) -> None:
        super().__init__()
        self.run = run
        self.event = event


class ChecksDone(Message):
    def __init__(self, report: CheckReport | None, error: str = "") -> None:
        super().__init__()
        self.report = report
        self.error = error


class LogLines(Message):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines
