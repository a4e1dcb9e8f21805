"""What every mutating operation shares: the lock, the guard, the event log, the audit line.

`locked(...)` wraps an operation's body (a generator of events): it refuses to
start when a forbidden variable is set or the environment is busy, writes
each event to `data/logs/{env}_{operation}_{time}.jsonl` for other processes
to follow, turns a StackError into a failed Result, and always leaves an audit
line, also when the operator presses Ctrl-C. An environment on another host's
engine has its audit lines copied there too; a copy that fails is said (a
Caution before the Result) and caught up by the next operation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any, TextIO

from stack_tui.core import audit, engine, engine_audit, engine_lock, locks
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import EngineUnreachable, LockHeld, Refused, StackError
from stack_tui.core.prepared import Prepared, prepare
from stack_tui.ops import alerts, died
from stack_tui.ops.events import Cause, Caution, Event, Outcome, OutputLine, Result

#: An operation's body: given its environment prepared once (`.env` read, guard passed).
Body = Callable[[Prepared], Iterator[Event]]


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
    *,
    lock: str = "",
    wait: float = 0.0,
) -> Iterator[Event]:
    """Run `body` holding `env`'s lock, logging and auditing it; the last event is a Result.

    `lock` names another lock than the environment's (a drill, which touches only a
    backup file, has its own); `wait` waits that long in all for a busy lock, the local
    one (locks.hold) and then the engine's (engine_lock.hold)."""
    started = time.time()
    deadline = time.monotonic() + wait
    outcome = Outcome.INTERRUPTED
    detail = ""
    waited_for: list[str] = []  # who held the lock while we waited
    log: Path | None = None
    prepared: Prepared | None = None
    audited = False

    def audit_line(cause: Cause | None = None) -> Caution | None:
        """This operation's audit line, once, and its copy on the engine's host (not when
        that engine is what failed): a Caution when the copy could not be made."""
        nonlocal audited
        if audited:
            return None
        audited = True
        audit.record(
            platform.audit_log,
            operation=operation,
            env=env.name,
            arguments=arguments,
            result=outcome.value,
            started=started,
            detail=detail,
        )
        if prepared is None or cause is Cause.ENGINE_UNREACHABLE:
            return None
        copied = engine_audit.copy(prepared, platform.audit_log)
        if not copied.error:
            return None
        return Caution(
            env.name,
            f"{env.name}'s audit trail on its engine's host is {copied.behind} line(s) behind "
            f"this machine's data/audit.log: {copied.error} The next operation copies them.",
        )

    try:
        ready = prepared = prepare(env)  # .env read once; a forbidden variable refuses here
        died.reap(platform, env)  # the previous operation, if it was killed: audited once
        log = log_path(platform, env, operation)
        with (
            locks.hold(
                platform.locks_dir,
                lock or env.project,
                env.name,
                operation,
                log,
                wait=wait,
                waiting=lambda h: waited_for.append(h.describe() if h else "another process"),
            ) as holder,
            # Another host's engine: held there too, against other operators' machines.
            engine_lock.hold(
                ready,
                env.project,
                holder,
                wait=max(0.0, deadline - time.monotonic()) if wait else 0.0,
                waiting=waited_for.append,
            )
            if not lock
            else nullcontext(),
            _open_log(log) as sink,
        ):
            if waited_for:
                waited = time.time() - started
                who = "; ".join(waited_for)
                line = OutputLine(
                    env.name, f"waited {waited:.0f} s for the lock ({who})", source="lock"
                )
                sink.write(line.to_json() + "\n")
                yield line
            events = _body_or_failure(env, operation, lambda: body(ready))
            try:
                # A KeyboardInterrupt thrown at our yield (the CLI's Ctrl-C or SIGTERM) is
                # thrown into the body at its own yield, so that it can undo its work, say
                # what it undid and end with an interrupted Result while the lock is held.
                interrupt: KeyboardInterrupt | None = None
                ended = False
                while True:
                    try:
                        event = events.throw(interrupt) if interrupt else next(events)
                    except StopIteration:
                        break
                    interrupt = None
                    if isinstance(event, Result):
                        outcome, detail = event.outcome, event.summary
                        ended = True
                        caution = audit_line(event.cause)  # while the locks are held
                        if caution is not None:
                            sink.write(caution.to_json() + "\n")
                            yield caution
                    sink.write(event.to_json() + "\n")
                    sink.flush()
                    try:
                        yield event
                    except KeyboardInterrupt as thrown:
                        interrupt = thrown
            finally:
                events.close()  # the body's own cleanup runs while the lock is still held
                if not ended:  # the log ends with a Result: it did not die
                    with suppress(OSError):
                        sink.write(_interrupted(env, operation).to_json() + "\n")
    except LockHeld as err:
        result = failure(env, operation, err)
        detail = err.message
        if wait:  # a scheduled run gave up waiting: not a failure, but someone should know
            result.outcome, result.cause = Outcome.SKIPPED, None
            alerts.lock_waited_out(platform, env, operation, err.message)
        else:
            result.outcome = Outcome.REFUSED
        outcome = result.outcome
        yield from _cautioned(audit_line(), result)
    except StackError as err:
        result = failure(env, operation, err)
        # Nothing ran yet (the guard, opening the log): whatever the error, a refusal.
        result.outcome = outcome = Outcome.REFUSED
        detail = result.summary
        yield from _cautioned(audit_line(result.cause), result)
    finally:
        audit_line()  # interrupted or closed before its Result: copied if it can be
        alerts.operation_ended(platform, env, operation, outcome.value, detail, log)


def _cautioned(caution: Caution | None, result: Result) -> Iterator[Event]:
    if caution is not None:
        yield caution
    yield result


def _interrupted(env: Environment, operation: str) -> Result:
    return Result(
        env.name,
        operation=operation,
        outcome=Outcome.INTERRUPTED,
        summary=f"{operation} was interrupted before it finished.",
    )


def _body_or_failure(
    env: Environment, operation: str, body: Callable[[], Iterator[Event]]
) -> Generator[Event, None, None]:
    try:
        yield from body()
    except StackError as err:
        yield failure(env, operation, err)
    except KeyboardInterrupt:
        yield Result(
            env.name,
            operation=operation,
            outcome=Outcome.INTERRUPTED,
            summary=f"{operation} interrupted (Ctrl-C or SIGTERM); the lines above "
            "say what was undone.",
        )


def failure(env: Environment, operation: str, err: StackError) -> Result:
    """The Result for an error: its outcome and cause come from the error's family."""
    if isinstance(err, EngineUnreachable) and not err.message.startswith(f"{env.name}'s"):
        # Said by code that did not know which engine its client reached (as status does):
        # an operation on another host's engine names that engine, never the local one.
        err = engine.unreachable_for(env, err.__context__)
    outcome, cause = classify(err)
    return Result(
        env.name,
        operation=operation,
        outcome=outcome,
        summary=err.message,
        details=[err.hint] if err.hint else [],
        cause=cause,
    )


def classify(err: StackError) -> tuple[Outcome, Cause | None]:
    """The family an error belongs to: subclasses (e.g. InvalidBackup) report as their family."""
    if isinstance(err, LockHeld):
        return Outcome.REFUSED, Cause.BUSY
    if isinstance(err, EngineUnreachable):
        return Outcome.FAILED, Cause.ENGINE_UNREACHABLE
    if isinstance(err, Refused):
        return Outcome.REFUSED, None
    return Outcome.FAILED, None


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
