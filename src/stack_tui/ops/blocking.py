"""No wait without a word: say who blocks a statement of ours while it waits.

A blocking read (pg_dump's output, a psql statement) runs in a helper thread
and its items reach the operation through a small queue. When nothing arrives
for `QUIET` seconds, the operation asks PostgreSQL whether a backend of ours
waits on a lock (`pg_blocking_pids`) and, if so, yields a `Waiting` event
naming the blockers, again each second. The bound itself is PostgreSQL's
(`lock_timeout`, pg_dump's `--lock-wait-timeout`): this module only speaks.

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

from stack_tui.core import pg
from stack_tui.core.errors import StackError
from stack_tui.ops.events import Event, Waiting

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
    try:
        while True:
            try:
                item = buffer.get(timeout=QUIET)
            except queue.Empty:
                yield from _who_blocks(db, env, what, time.monotonic() - started)
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            started = time.monotonic()
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


def _who_blocks(db: pg.Session, env: str, what: str, waited: float) -> Iterator[Event]:
    try:
        blockers = pg.blockers_of(db, db.name)
    except StackError:  # asking is best effort: the wait itself is bounded by PostgreSQL
        return
    if blockers:
        yield Waiting(
            env,
            what=what,
            seconds=round(waited, 1),
            bound=float(db.lock_timeout),
            blockers=[b.describe() for b in blockers],
        )
