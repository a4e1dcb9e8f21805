"""Operations that died without a word (SIGKILL, OOM killer, power loss).

Such a process leaves its event log in data/logs/ without a Result, and the
kernel frees its lock. The next process that looks (status, or the next
operation) records it, once, as `died` in the audit log and appends a Result
saying so to the log itself, so the environment shows it until its next
operation writes a newer log.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from stack_tui.core import locks
from stack_tui.core.environments import Environment, Platform

#: How much of a log's end is read to find its last event.
TAIL_BYTES = 64 * 1024
#: ops.events.Killed.kind, as in the log (a status read looks at logs as JSON: it does not
#: import the event types).
KILLED = "died"


@dataclass(frozen=True)
class Died:
    """An operation of this environment that died; the newest log of its environment."""

    operation: str
    pid: int
    started: float
    last_step: str
    log: str

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        during = f" during '{self.last_step}'" if self.last_step else ""
        return f"{self.operation} (pid {self.pid}, started {since}) died{during}"


def newest_log(platform: Platform, env: Environment) -> Path | None:
    """The environment's most recent event log (logs are named `{env}_{operation}_...`)."""
    newest: tuple[float, Path] | None = None
    for log in platform.logs_dir.glob(f"{env.name}_*_*.jsonl"):
        try:
            stamp = log.stat().st_mtime
        except OSError:  # pruned meanwhile by another process
            continue
        if newest is None or stamp > newest[0]:
            newest = (stamp, log)
    return newest[1] if newest else None


def reap(platform: Platform, env: Environment) -> Died | None:
    """The environment's last operation if it died, recording its death once.

    Lock-free (status calls it): the newest log is picked first, then the lock is
    looked at (never taken). An operation that starts meanwhile takes the lock before
    it creates its log, so a log without a Result and a free lock is a dead one."""
    log = newest_log(platform, env)
    if log is None:
        return None
    last = _last_event(log)
    if last is not None and last.get("kind") == "result":
        return _died_from(log, last)
    if locks.holder(platform.locks_dir, env.project) is not None:
        return None  # running (this log is its, or an older one that it will follow)
    return _record(platform, env, log)


def _record(platform: Platform, env: Environment, log: Path) -> Died | None:
    """Audit the death and mark the log, under a flock on the log: once across processes."""
    try:
        fd = os.open(log, os.O_RDWR | os.O_APPEND)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # only reapers take it, each for a moment
        last = _last_event(log)
        if last is not None and last.get("kind") == "result":
            return _died_from(log, last)  # another process recorded it meanwhile
        operation, pid, started = _from_name(log)
        step = _last_step(log)
        died = Died(operation, pid, started, step, str(log))
        detail = (
            f"pid {pid} ended without a result{f' during {step!r}' if step else ''}: killed "
            "(SIGKILL, out of memory) or the machine stopped. Check './stack status'."
        )
        from stack_tui.core import audit  # only the first reader of a death records it

        audit.record(
            platform.audit_log,
            operation=operation,
            env=env.name,
            arguments={},
            result="died",
            started=started,
            detail=detail,
        )
        from stack_tui.ops import alerts  # rare: not imported by every status read
        from stack_tui.ops.events import Killed, Outcome, Result

        alerts.operation_ended(platform, env, operation, Outcome.DIED.value, detail, log)
        marker = Result(
            env.name,
            operation=operation,
            outcome=Outcome.DIED,
            summary=f"{died.describe()}.",
            details=[detail],
            payload=Killed(pid, started, step),
        )
        os.write(fd, (marker.to_json() + "\n").encode())
        return died
    finally:
        os.close(fd)


def _died_from(log: Path, result: dict[str, object]) -> Died | None:
    """The Died a log's final Result describes, or None for any other Result."""
    died = result.get("payload")
    if not isinstance(died, dict) or died.get("kind") != KILLED:
        return None
    operation, _, _ = _from_name(log)
    return Died(
        operation,
        int(died.get("pid", 0)),
        float(died.get("started", 0.0)),
        str(died.get("last_step", "")),
        str(log),
    )


def _from_name(log: Path) -> tuple[str, int, float]:
    """(operation, pid, start time) from `{env}_{operation}_{YYYYmmdd}_{HHMMSS}_{pid}.jsonl`."""
    parts = log.stem.split("_")
    try:
        started = time.mktime(time.strptime(f"{parts[-3]}_{parts[-2]}", "%Y%m%d_%H%M%S"))
        pid = int(parts[-1])
    except (IndexError, ValueError):
        return "_".join(parts[1:-3]) or "operation", 0, log.stat().st_mtime
    return "_".join(parts[1:-3]), pid, started


def _tail_lines(log: Path) -> list[str]:
    with log.open("rb") as source:
        size = source.seek(0, os.SEEK_END)
        source.seek(max(0, size - TAIL_BYTES))
        tail = source.read().decode("utf-8", "replace")
    lines = tail.splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first one is probably cut
    return [line for line in lines if line.strip()]


def _last_event(log: Path) -> dict[str, object] | None:
    for line in reversed(_tail_lines(log)):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line the process was writing when it died
        return event if isinstance(event, dict) else None
    return None


def _last_step(log: Path) -> str:
    for line in reversed(_tail_lines(log)):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("kind") == "step_started":
            return str(event.get("step", ""))
    return ""
