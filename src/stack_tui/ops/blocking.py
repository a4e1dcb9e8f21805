"""No wait without a word: say who blocks a statement of ours while it waits.

A blocking read (pg_dump's output, a psql statement) runs in a helper thread
and its items reach the operation through a small queue. When nothing arrives
for `QUIET` seconds, the operation asks PostgreSQL whether a backend of ours
waits on a lock (`pg_blocking_pids`) and, if so, yields a `Waiting` event
naming the blockers, again each second. The bound itself is PostgreSQL's
(`lock_timeout`, pg_dump's `--lock-wait-timeout`): this module only speaks.

The question itself goes to the engine too, in a thread of its own: when the network to a
remote engine is gone, the read and the question both hang until the connection is given
up (core.endpoints.DEAD_AFTER). Then the operation says, once, that neither answers and when
it will give up, instead of going silent for that long.

Because the operation's generator keeps control while it waits, Ctrl-C, a
cancel from the TUI (which closes the generator at a yield) and SIGTERM reach
its cleanup within a second, even while PostgreSQL still queues our request.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TypeVar

from stack_tui.core import endpoints, pg
from stack_tui.core.errors import StackError
from stack_tui.ops.events import Event, OutputLine, Waiting

T = TypeVar("T")

#: Seconds without progress before we ask who blocks us (and between two asks).
QUIET = 1.0
#: Items buffered between the reader thread and the operation (bounded memory).
BUFFERED = 16

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def watched(
    items: Iterable[T], db: pg.Session, env: str, what: str
) -> Generator[T | Event, None, None]:
    """`items`, read in a thread; interleaved with Waiting events while ours are blocked."""
    buffer: queue.Queue[object] = queue.Queue(BUFFERED)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=QUIET)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as err:  # handed to the operation's thread, which raises it
            buffer.put(_Failure(err))

    reader = threading.Thread(target=read, name=f"stack-tui {what}", daemon=True)
    reader.start()
    started = time.monotonic()
    asking: _Question | None = None
    said_silent = False
    try:
        while True:
            try:
                item = buffer.get(timeout=QUIET)
            except queue.Empty:
                fresh = asking is None
                asking = asking or _Question(db)
                blockers = asking.answer(QUIET if fresh else 0.0)
                if blockers is not None:
                    asking = None
                    yield from _waiting(db, env, what, time.monotonic() - started, blockers)
                elif not said_silent and asking.pending() >= unanswered():
                    said_silent = True
                    yield _silent(env, what, time.monotonic() - started)
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            started = time.monotonic()
            said_silent = False
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join(QUIET)  # it lets go of `items` at its next item (at once when one waits)


def call(
    fn: Callable[[], T], db: pg.Session, env: str, what: str
) -> Generator[Event | T, None, None]:
    """Run one blocking call the same way; its return value is the last item."""
    return watched(_once(fn), db, env, what)


def _once(fn: Callable[[], T]) -> Iterator[T]:
    yield fn()


def unanswered() -> float:
    """Seconds the question may go unanswered before the operation says so."""
    return max(QUIET, endpoints.DEAD_AFTER / 6)


class _Question:
    """Who blocks ours, asked in a thread: over a dead link the answer never comes, and the
    operation must go on speaking (and stay stoppable) meanwhile."""

    def __init__(self, db: pg.Session) -> None:
        self.asked = time.monotonic()
        self._answer: queue.Queue[list[pg.Backend] | _Failure] = queue.Queue(1)
        threading.Thread(
            target=self._ask, args=(db,), name="stack-tui blockers", daemon=True
        ).start()

    def _ask(self, db: pg.Session) -> None:
        try:
            self._answer.put(pg.blockers_of(db, db.name))
        except StackError:  # asking is best effort: the wait itself is bounded by PostgreSQL
            self._answer.put([])
        except BaseException as err:  # a bug: raised in the operation's thread, as before
            self._answer.put(_Failure(err))

    def answer(self, within: float) -> list[pg.Backend] | None:
        """The blockers (maybe none); None while the question is still out."""
        try:
            got = self._answer.get(timeout=within) if within else self._answer.get_nowait()
        except queue.Empty:
            return None
        if isinstance(got, _Failure):
            raise got.error
        return got

    def pending(self) -> float:
        return time.monotonic() - self.asked


def _silent(env: str, what: str, waited: float) -> OutputLine:
    return OutputLine(
        env,
        f"{what} has sent nothing for {waited:.0f} s and the database does not answer either: "
        f"{env}'s engine may be unreachable; the connection to it is given up about "
        f"{endpoints.DEAD_AFTER + endpoints.keepalive_interval():g} s after its last answer "
        "(the first keepalive, then its unanswered probes)",
        source=what,
    )


def _waiting(
    db: pg.Session, env: str, what: str, waited: float, blockers: list[pg.Backend]
) -> Iterator[Event]:
    if blockers:
        yield Waiting(
            env,
            what=what,
            seconds=round(waited, 1),
            bound=float(db.lock_timeout),
            blockers=[b.describe() for b in blockers],
        )
