"""One operation per environment at a time, across processes.

A flock on `data/locks/{project}.lock`: the kernel drops it when the holder
dies, so a killed process never leaves a stale lock. The file's content says
who holds it, for the message the next operator sees.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from stack_tui.core.errors import LockHeld


@dataclass(frozen=True)
class Holder:
    user: str
    ssh_client: str
    pid: int
    operation: str
    env: str
    started: float
    log: str = ""

    def describe(self) -> str:
        where = f" from {self.ssh_client}" if self.ssh_client else ""
        since = time.strftime("%H:%M:%S", time.localtime(self.started))
        minutes = int((time.time() - self.started) // 60)
        return (
            f"{self.operation} by {self.user}{where} (pid {self.pid}) "
            f"since {since} ({minutes} min ago)"
        )


#: Locks this process holds: project -> (holding thread, holder).
_held: dict[str, tuple[int, Holder]] = {}
#: Locks their holder lends to the operations it runs inside itself (see `lend`).
_lent: dict[str, tuple[int, Holder]] = {}


def lock_path(locks_dir: Path, project: str) -> Path:
    return locks_dir / f"{project}.lock"


#: How often a bounded wait tries the lock again: flock has no timeout and a released
#: lock sends no event (a holder killed by the kernel writes nothing).
WAIT_INTERVAL = 0.25


@contextmanager
def hold(
    locks_dir: Path,
    project: str,
    env: str,
    operation: str,
    log: Path | None = None,
    *,
    wait: float = 0.0,
    waiting: Callable[[Holder | None], None] | None = None,
) -> Iterator[Holder]:
    """Hold the environment's lock for the block, or raise LockHeld naming the holder
    (also when this very thread holds it, unless it lent it: see `lend`).

    With `wait` > 0, a busy lock is tried again for up to that many seconds
    (for a scheduled backup meeting a deploy or a TUI dialog); `waiting` is told
    who holds it when the wait starts and whenever the holder changes.
    """
    lent = _lent.get(project)
    if lent is not None and lent[0] == threading.get_ident():
        yield lent[1]
        return
    locks_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = lock_path(locks_dir, project)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _take(fd, path, env, wait, waiting)
        from stack_tui.core import identity  # only a lock's taker says who it is

        actor = identity.current()
        holder = Holder(
            user=actor.user,
            ssh_client=actor.ssh_client,
            pid=actor.pid,
            operation=operation,
            env=env,
            started=time.time(),
            log=str(log or ""),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        _held[project] = (threading.get_ident(), holder)
        try:
            yield holder
        finally:
            del _held[project]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _take(
    fd: int, path: Path, env: str, wait: float, waiting: Callable[[Holder | None], None] | None
) -> None:
    deadline = time.monotonic() + wait
    seen: Holder | None = None
    first = True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            current = _read(path)
        if time.monotonic() >= deadline:
            who = current.describe() if current else "another process"
            waited = f" (waited {wait:.0f} s)" if wait > 0 else ""
            raise LockHeld(
                f"{env} is busy: {who}{waited}.",
                "Wait for it to finish (the TUI shows it live), then try again.",
            ) from None
        if waiting is not None and (first or current != seen):
            waiting(current)
        first, seen = False, current
        time.sleep(min(WAIT_INTERVAL, max(0.0, deadline - time.monotonic())))


@contextmanager
def lend(project: str) -> Iterator[None]:
    """Within the block, an operation this thread starts on `project` runs under the lock
    this thread holds (a rollback restoring its data runs the restore operation). Only
    the holder can lend, and only explicitly: holding a lock is no pass by itself."""
    mine = _held.get(project)
    if mine is None or mine[0] != threading.get_ident():
        raise RuntimeError(f"lend({project!r}) outside the operation holding its lock")
    _lent[project] = mine
    try:
        yield
    finally:
        del _lent[project]


def held_elsewhere(locks_dir: Path, project: str) -> bool:
    """Whether an operation other than the calling thread's own holds the lock."""
    mine = _held.get(project)
    if mine is not None:
        return mine[0] != threading.get_ident()
    return holder(locks_dir, project) is not None


def holder(locks_dir: Path, project: str) -> Holder | None:
    """Who holds the environment's lock right now, or None when it is free.

    Never takes the lock, not even shared for an instant: a reader probing it would
    make a writer's non-blocking take fail as "busy". The kernel's table of file
    locks (/proc/locks) says whether a flock is held on the file; the file says who.
    """
    path = lock_path(locks_dir, project)
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    if not _flocked(status.st_dev, status.st_ino):
        return None
    return _read(path) or Holder("?", "", 0, "an operation", "", time.time())


def _flocked(device: int, inode: int) -> bool:
    """Whether /proc/locks lists a granted flock on the file (waiters, `->`, are not holders).

    Lines read `1: FLOCK  ADVISORY  WRITE 3292 fe:00:1474591 0 EOF`. Locks of processes
    in another PID namespace are not listed: run the TUI in the operators' namespace.
    """
    wanted = f"{os.major(device):02x}:{os.minor(device):02x}:{inode}"
    with open("/proc/locks", encoding="ascii", errors="replace") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == wanted:
                return True
    return False


def _read(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text() or "null"))
    except (OSError, ValueError, TypeError):
        return None
