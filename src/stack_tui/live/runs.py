"""What the TUI remembers of an operation: its events, per-service states and result.

Textual-free. One Run per operation, ours or another process's (followed through
its JSONL log), kept after it finishes so its output stays readable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from stack_tui.core.locks import Holder
from stack_tui.ops.status import human_duration

if TYPE_CHECKING:  # the event types are imported with the first operation (Run.add)
    from stack_tui.ops.events import ConfirmationNeeded, Event, Result


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def describe_holder(holder: Holder, now: float) -> str:
    """Like Holder.describe(), against the injected clock (snapshots stay deterministic)."""
    return (
        f"{holder.operation} by {who(holder)} since "
        f"{clock(holder.started)} ({human_duration(now - holder.started)})"
    )


def who(holder: Holder) -> str:
    """The person and process behind a lock: "alice from 10.0.0.7 (pid 42)"."""
    where = f" from {holder.ssh_client}" if holder.ssh_client else ""
    return f"{holder.user}{where} (pid {holder.pid})"


class DiedRecord(Protocol):
    """An operation whose process died without a Result, as status reports it (EnvStatus.died,
    ops.died): shown until the environment's next operation."""

    @property
    def operation(self) -> str: ...

    @property
    def pid(self) -> int: ...

    @property
    def started(self) -> float: ...

    @property
    def last_step(self) -> str: ...

    @property
    def log(self) -> str: ...


@dataclass
class Run:
    env: str
    operation: str
    started: float = field(default_factory=time.time)
    #: Who runs it, for another process's operation ("alice from 10.0.0.7 (pid 42)").
    owner: str = ""
    events: list[Event] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)
    result: Result | None = None
    #: The question the operation waits on while its dialog is open.
    waiting: ConfirmationNeeded | None = None

    @property
    def running(self) -> bool:
        return self.result is None

    @property
    def ours(self) -> bool:
        return not self.owner

    def add(self, event: Event) -> None:
        from stack_tui.ops.events import Result, ServiceProgress

        self.events.append(event)
        if isinstance(event, ServiceProgress):
            self.services[event.service] = event.state
        elif isinstance(event, Result):
            self.result = event
