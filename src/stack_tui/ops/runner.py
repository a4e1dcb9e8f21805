"""What every mutating operation shares: the lock, the guard, the event log, the audit line.

`locked(...)` wraps an operation's body (a generator of events): it refuses to
start when a forbidden variable is set or the environment is busy, writes
each event to `data/logs/{env}_{operation}_{time}.jsonl` for other processes
to follow, turns a StackError into a failed Result, and always leaves an audit
line, also when the operator presses Ctrl-C.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TextIO

from stack_tui.core import audit, guard, locks
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import EngineUnreachable, LockHeld, Refused, StackError
from stack_tui.ops.events import Event, Result

Body = Callable[[], Iterator[Event]]


#: Event logs kept in data/logs/ (newest first); older ones are removed as new ones start.
KEEP_LOGS = 200


def log_path(platform: Platform, env: Environment, operation: str) -> Path:
    stamp = time.strftime("%Y%m%d_%H%M%S")
    return platform.logs_dir / f"{env.name}_{operation}_{stamp}_{os.getpid()}.jsonl"


def locked(
    platform: Platform,
    env: Environment,
    operation: str,
    arguments: dict[str, Any],
    body: Body,
) -> Iterator[Event]:
    """Run `body` holding `env`'s lock, logging and auditing it; the last event is a Result."""
    started = time.time()
    outcome = "interrupted"
    detail = ""
    try:
        guard.check(env.env_file)
        log = log_path(platform, env, operation)
        with (
            locks.hold(platform.locks_dir, env.project, env.name, operation, log),
            _open_log(log) as sink,
        ):
            events = _body_or_failure(env, operation, body)
            try:
                for event in events:
                    sink.write(event.to_json() + "\n")
                    sink.flush()
                    if isinstance(event, Result):
                        outcome = _outcome(event)
                        detail = event.summary
                    yield event
            finally:
                events.close()  # the body's own cleanup runs while the lock is still held
    except StackError as err:
        outcome, detail = "refused", err.message
        yield failure(env, operation, err)
    finally:
        audit.record(
            platform.audit_log,
            operation=operation,
            env=env.name,
            arguments=arguments,
            result=outcome,
            started=started,
            detail=detail,
        )


def _outcome(result: Result) -> str:
    if result.ok:
        return "ok"
    return "refused" if result.data.get("error") in ("Refused", "LockHeld") else "failed"


def _body_or_failure(env: Environment, operation: str, body: Body) -> Generator[Event, None, None]:
    try:
        yield from body()
    except StackError as err:
        yield failure(env, operation, err)


def failure(env: Environment, operation: str, err: StackError) -> Result:
    """The Result for an error; `data["error"]` names its kind (the CLI maps it to an exit code)."""
    return Result(
        env.name,
        operation=operation,
        ok=False,
        summary=err.message,
        details=[err.hint] if err.hint else [],
        data={"error": error_kind(err)},
    )


def error_kind(err: StackError) -> str:
    """The family an error belongs to: subclasses (e.g. InvalidBackup) report as their family."""
    for family in (LockHeld, EngineUnreachable, Refused):
        if isinstance(err, family):
            return family.__name__
    return "StackError"


def _open_log(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _prune_logs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def _prune_logs(directory: Path) -> None:
    """Keep the newest KEEP_LOGS event logs; only our own `*.jsonl` names are touched."""
    dated: list[tuple[float, Path]] = []
    for log in directory.glob("*_*_*.jsonl"):
        try:
            dated.append((log.stat().st_mtime, log))
        except OSError:  # removed meanwhile by another process's pruning
            continue
    for _, old in sorted(dated, reverse=True)[KEEP_LOGS:]:
        old.unlink(missing_ok=True)
