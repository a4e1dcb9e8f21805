"""The typed events every operation yields.

An operation is a generator: `for event in deploy(...)`. It yields progress,
and when it needs a decision it yields a ConfirmationNeeded and reads the
answer the front end stored on it (`event.answer(True)`), so the same code
serves an interactive CLI, `--yes`, and a TUI modal. Every event is also
written as one JSON line to the operation's log file, which is how a second
process follows a running operation live.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    env: str
    at: float = field(default_factory=time.time, kw_only=True)
    kind: ClassVar[str] = "event"

    def to_json(self) -> str:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.pop("response", None)
        return json.dumps({"kind": self.kind, **fields}, default=str)


@dataclass
class StepStarted(Event):
    step: str
    detail: str = ""
    kind: ClassVar[str] = "step_started"


@dataclass
class StepFinished(Event):
    step: str
    ok: bool = True
    detail: str = ""
    kind: ClassVar[str] = "step_finished"


@dataclass
class OutputLine(Event):
    """A raw line of output from Compose, pg_dump or psql."""

    line: str
    source: str = ""
    kind: ClassVar[str] = "output"


@dataclass
class ServiceProgress(Event):
    """One service's state during a deploy (created, starting, healthy, ...)."""

    service: str
    state: str
    kind: ClassVar[str] = "service"


@dataclass
class Warning(Event):
    message: str
    kind: ClassVar[str] = "warning"


@dataclass
class ConfirmationNeeded(Event):
    """A decision only a person may take. `require_typing` asks them to type that text."""

    question: str
    details: list[str] = field(default_factory=list)
    require_typing: str = ""
    response: bool | None = None
    kind: ClassVar[str] = "confirm"

    def answer(self, yes: bool) -> None:
        self.response = yes


@dataclass
class Result(Event):
    """The last event of every operation."""

    operation: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "result"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        StepStarted,
        StepFinished,
        OutputLine,
        ServiceProgress,
        Warning,
        ConfirmationNeeded,
        Result,
    )
}


def from_json(line: str) -> Event:
    """Rebuild an event from a log line (to follow another process's operation)."""
    raw = json.loads(line)
    cls = EVENT_TYPES[raw.pop("kind")]
    return cls(**raw)
