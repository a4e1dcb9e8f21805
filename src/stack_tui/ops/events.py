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
import enum
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
        if isinstance(fields.get("payload"), Payload):
            fields["payload"] = fields["payload"].to_dict()
        if isinstance(self, Result):  # for readers of the raw log (jq, older followers)
            fields["ok"] = self.ok
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
class Caution(Event):
    message: str
    kind: ClassVar[str] = "warning"


@dataclass
class Waiting(Event):
    """A statement of ours waits on locks that other sessions hold (repeated while it waits).

    `bound` is when PostgreSQL gives up on our behalf (lock_timeout); `blockers` describe
    the sessions in the way (pid, application, client, state, age, query)."""

    what: str
    seconds: float
    bound: float
    blockers: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "waiting"


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


class Outcome(enum.StrEnum):
    """How an operation ended (also the audit log's `result`)."""

    OK = "ok"
    FAILED = "failed"  # it ran and did not succeed
    REFUSED = "refused"  # stopped before changing anything (bad input, busy, guard)
    CANCELLED = "cancelled"  # the operator answered no
    INTERRUPTED = "interrupted"  # Ctrl-C, or the TUI quit, before the end
    DIED = "died"  # its process was killed: found later by another process
    SKIPPED = "skipped"  # a scheduled run gave up waiting for a busy lock: tried again later


class Cause(enum.StrEnum):
    """The kinds of failure a caller tells apart (the CLI's exit codes 4 and 5)."""

    ENGINE_UNREACHABLE = "engine_unreachable"
    BUSY = "busy"


PAYLOADS: dict[str, type[Payload]] = {}


@dataclass(frozen=True)
class Payload:
    """What a successful operation produced, typed per operation; rebuilt from the log by
    `kind`. Subclasses register themselves."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        PAYLOADS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class BackupTaken(Payload):
    path: str
    size: int
    seconds: float
    kind: ClassVar[str] = "backup"


@dataclass(frozen=True)
class Deployed(Payload):
    #: service -> {"state", "health", "image"}
    services: dict[str, dict[str, str]]
    #: The deploy record it wrote (core/records.py), and on failure: which services failed,
    #: and which the health gate put back on their previous images.
    record: str = ""
    failed: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "deploy"


@dataclass(frozen=True)
class Restored(Payload):
    file: str
    database: str
    #: The database as it was just before, kept under this name (undo-restore swaps it back).
    kept_as: str
    #: The restore's own time, without the time the operator took to answer.
    seconds: float
    #: How long the services that use the database were down for the switch-over.
    downtime: float
    phases: dict[str, float]
    kind: ClassVar[str] = "restore"


@dataclass(frozen=True)
class RestoreUndone(Payload):
    database: str
    #: The kept copy that became the database again.
    restored_from: str
    #: The database as it was before the undo, kept in turn.
    kept_as: str
    downtime: float
    kind: ClassVar[str] = "undo-restore"


@dataclass(frozen=True)
class Drilled(Payload):
    """A backup restored into a throwaway PostgreSQL and checked (ok or not: see outcome)."""

    file: str
    seconds: float
    total_seconds: float
    rows: int
    kind: ClassVar[str] = "drill"


@dataclass(frozen=True)
class RolledBack(Payload):
    #: The rollback's own record, and the deploy record it undid.
    record: str
    undoes: str
    kind: ClassVar[str] = "rollback"


@dataclass(frozen=True)
class Killed(Payload):
    """The made-up Result the next process writes into the log of one that was killed."""

    pid: int
    started: float
    last_step: str
    kind: ClassVar[str] = "died"


@dataclass
class Result(Event):
    """The last event of every operation: `Result(env, operation, Outcome.OK, summary, ...)`."""

    operation: str
    outcome: Outcome
    summary: str
    details: list[str] = field(default_factory=list)
    #: Set for the failures a caller tells apart (exit codes); None otherwise.
    cause: Cause | None = None
    payload: Payload | None = None
    kind: ClassVar[str] = "result"

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        StepStarted,
        StepFinished,
        OutputLine,
        ServiceProgress,
        Caution,
        Waiting,
        ConfirmationNeeded,
        Result,
    )
}


def from_json(line: str) -> Event:
    """Rebuild an event from a log line (to follow another process's operation)."""
    raw = json.loads(line)
    cls = EVENT_TYPES[raw.pop("kind")]
    if cls is Result:
        ok = raw.pop("ok", False)  # derived from the outcome
        if "outcome" not in raw:  # written before outcomes were typed: ok and data
            raw["outcome"] = Outcome.OK if ok else Outcome.FAILED
            raw.pop("data", None)
        raw["outcome"] = Outcome(raw["outcome"])
        raw["cause"] = Cause(raw["cause"]) if raw.get("cause") else None
        payload = raw.get("payload")
        if payload:
            raw["payload"] = PAYLOADS[payload.pop("kind")](**payload)
    return cls(**raw)
