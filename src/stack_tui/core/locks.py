"""One operation per environment at a time, across processes.

A flock on `data/locks/{project}.lock`: the kernel drops it when the holder
dies, so a killed process never leaves a stale lock. The file's content says
who holds it, for the message the next operator sees.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from stack_tui.core import identity
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


def lock_path(locks_dir: Path, project: str) -> Path:
    return locks_dir / f"{project}.lock"


@contextmanager
def hold(
    locks_dir: Path, project: str, env: str, operation: str, log: Path | None = None
) -> Iterator[Holder]:
    """Hold the environment's lock for the block, or raise LockHeld naming the holder."""
    locks_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = lock_path(locks_dir, project)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            current = _read(path)
            who = current.describe() if current else "another process"
            raise LockHeld(
                f"{env} is busy: {who}.",
                "Wait for it to finish (the TUI shows it live), then try again.",
            ) from None
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
        try:
            yield holder
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(locks_dir: Path, project: str) -> Holder | None:
    """Who holds the environment's lock right now, or None when it is free."""
    path = lock_path(locks_dir, project)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(path) or Holder("?", "", 0, "an operation", "", time.time())
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text() or "null"))
    except (OSError, ValueError, TypeError):
        return None
