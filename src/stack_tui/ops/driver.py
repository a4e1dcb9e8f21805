"""The one driver of the event protocol: the CLI, the TUI, tests and benchmarks all run an
operation through `drive`.

It iterates the events, answers each ConfirmationNeeded before the generator resumes (so
nothing happens before the answer), stops when `cancelled()` says so (closing the generator
runs its cleanup: the lock is released and the audit line says "interrupted", as Ctrl-C
does), and always ends with a Result: an operation that stops without one gets one that
says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator

from stack_tui.ops.events import ConfirmationNeeded, Event, Outcome, Result

log = logging.getLogger(__name__)


def never() -> bool:
    return False


def resume(iterator: Iterator[Event], interrupt: KeyboardInterrupt | None) -> Event:
    """The next event; after a Ctrl-C in the front end, the operation's answer to it.

    A Ctrl-C (or SIGTERM, see cli.main) that lands while the front end prints or asks is
    thrown into the operation at its yield, so it undoes what it started, says what it
    undid, and ends with an interrupted Result; an operation that is not a generator just
    stops."""
    if interrupt is None:
        return next(iterator)
    if isinstance(iterator, Generator):
        event: Event = iterator.throw(interrupt)
        return event
    raise interrupt


def drive(
    events: Iterable[Event],
    answer: Callable[[ConfirmationNeeded], bool],
    on_event: Callable[[Event], object] = lambda event: None,
    *,
    cancelled: Callable[[], bool] = never,
    env: str = "",
    operation: str = "",
    catch_bugs: bool = False,
) -> Result:
    """Run `events` to their Result (passed to `on_event` like every other event) and return it.

    `env` and `operation` name the Result made up when the operation stops without one.
    `catch_bugs`: an unexpected exception becomes a failed Result instead of propagating
    (the TUI must not go down with an operation); KeyboardInterrupt always propagates.
    """
    result: Result | None = None
    iterator = iter(events)
    interrupt: KeyboardInterrupt | None = None
    try:
        while True:
            try:
                event = resume(iterator, interrupt)
            except StopIteration:
                break
            interrupt = None
            try:
                if isinstance(event, ConfirmationNeeded):
                    event.answer(answer(event))
                if isinstance(event, Result):
                    result = event
                on_event(event)
            except KeyboardInterrupt as thrown:
                interrupt = thrown  # the operation hears it at its yield, and ends itself
                continue
            if cancelled():
                break
    except Exception as err:
        if not catch_bugs:
            raise
        log.exception("%s on %s stopped by an unexpected error", operation, env)
        result = Result(
            env,
            operation,
            Outcome.FAILED,
            f"{operation} stopped by an unexpected error: {err}",
            ["The operation's event log is in data/logs/."],
        )
        on_event(result)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if result is None:
        outcome = Outcome.INTERRUPTED if cancelled() else Outcome.FAILED
        result = Result(
            env,
            operation,
            outcome,
            f"{operation} was interrupted before it finished."
            if cancelled()
            else f"{operation} ended without a result.",
        )
        on_event(result)
    return result
