"""Running an operation's event stream in a worker thread, and following another
process's operation through its JSONL log.

Textual-free: the screen passes callbacks (post an event, ask a question, "was I
cancelled?"), so the rules live here and are tested without a terminal. Whatever
happens, the stream of events ends with a Result: a bug, a quit, or a process that
died without writing one each become a failed Result that says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from stack_tui.ops.events import ConfirmationNeeded, Event, Result, from_json
from stack_tui.tui.runs import Run

Post = Callable[[Event], object]
#: How often a followed log is read while the other process still holds the lock.
FOLLOW_POLL = 0.1


def failed(run: Run, summary: str, details: list[str] | None = None) -> Result:
    return Result(
        run.env, operation=run.operation, ok=False, summary=summary, details=details or []
    )


def drive(
    run: Run,
    start: Callable[[], Iterator[Event]],
    post: Post,
    ask: Callable[[ConfirmationNeeded], bool],
    cancelled: Callable[[], bool],
) -> None:
    """Iterate the operation; a question is answered before the generator resumes.

    Cancelled (the app quits): the generator is closed at its next event, which runs
    its cleanup (lock released, audit line "interrupted"), as Ctrl-C does in the CLI.
    """
    finished = False
    events = start()
    try:
        for event in events:
            if isinstance(event, ConfirmationNeeded):
                event.answer(ask(event))
            finished = isinstance(event, Result)
            post(event)
            if cancelled():
                break
    except Exception as err:  # a bug in an operation must not take the UI down
        post(
            failed(
                run,
                f"{run.operation} stopped by an unexpected error: {err}",
                ["The operation's event log is in data/logs/."],
            )
        )
        return
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    if not finished:
        post(failed(run, f"{run.operation} was interrupted before it finished."))


def follow(
    run: Run,
    path: Path,
    post: Post,
    held: Callable[[], bool],
    cancelled: Callable[[], bool],
    poll: float = FOLLOW_POLL,
) -> None:
    """Tail `path` until its Result, or until the lock is free (read once more, then stop)."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        post(failed(run, f"Cannot read that operation's log {path}: {err.strerror}"))
        return
    pending = ""
    with handle:
        while not cancelled():
            chunk = handle.read()
            if not chunk and held():
                time.sleep(poll)
                continue
            ended = not chunk
            pending += chunk + (handle.read() if ended else "")
            *lines, pending = pending.split("\n")
            for line in lines:
                event = _parse(line)
                if event is not None:
                    post(event)
                    if isinstance(event, Result):
                        return
            if ended:
                post(failed(run, f"{run.operation} ended without a result (its process died?)."))
                return


def _parse(line: str) -> Event | None:
    if not line.strip():
        return None
    try:
        return from_json(line)
    except (ValueError, KeyError, TypeError):
        return None
