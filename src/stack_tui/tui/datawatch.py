"""Notice lock and backup changes made by any process, without polling.

Textual-free. Another operator's CLI backup produces no engine event we listen
to, and a lock taken by another process none at all; both are files under
`data/`. inotify (Linux, through libc) reports them the moment they happen, so
the panes need no periodic resync. Where inotify is missing the panes still
update on engine events and on refresh (R).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
from collections.abc import Callable
from pathlib import Path

from stack_tui.core import backups
from stack_tui.core.environments import Environment, Platform

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
_HEADER = struct.Struct("iIII")

#: The lock holder writes its record on acquire and truncates it on release.
LOCKS_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE
#: Backups appear by rename and go by unlink; partial dumps (IN_MODIFY floods) are ignored.
BACKUPS_MASK = IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE
DATA_MASK = IN_CREATE | IN_MOVED_TO


class DataWatcher:
    """Report "env X changed" for lock and backup file changes, until `stop()`."""

    def __init__(self, platform: Platform, on_change: Callable[[str], object]) -> None:
        self._platform = platform
        self._on_change = on_change
        envs: tuple[Environment, ...] = (platform.dev, platform.prod)
        self._lock_files = {f"{env.project}.lock": env.name for env in envs}
        self._env_names = {env.name for env in envs}
        self._wake_r, self._wake_w = os.pipe()
        self._libc: ctypes.CDLL | None = None
        self._fd = -1
        self._watches: dict[int, str] = {}

    def run(self) -> None:
        try:
            self._libc = ctypes.CDLL(None, use_errno=True)
            self._fd = self._libc.inotify_init1(os.O_CLOEXEC)
        except (OSError, AttributeError):
            self._fd = -1
        if self._fd < 0:
            os.close(self._wake_r)
            return
        try:
            self._watch(self._platform.data, "data", DATA_MASK)
            self._watch(self._platform.locks_dir, "locks", LOCKS_MASK)
            self._watch(self._platform.backups_dir, "backups", BACKUPS_MASK)
            while True:
                ready, _, _ = select.select([self._fd, self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                self._dispatch(os.read(self._fd, 65536))
        finally:
            os.close(self._fd)
            os.close(self._wake_r)

    def _watch(self, path: Path, role: str, mask: int) -> None:
        assert self._libc is not None
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd >= 0:
            self._watches[wd] = role

    def _dispatch(self, buffer: bytes) -> None:
        changed: set[str] = set()
        offset = 0
        while offset + _HEADER.size <= len(buffer):
            wd, _mask, _cookie, length = _HEADER.unpack_from(buffer, offset)
            start = offset + _HEADER.size
            name = buffer[start : start + length].rstrip(b"\0").decode(errors="replace")
            offset = start + length
            role = self._watches.get(wd)
            if role == "data" and name in ("locks", "backups"):
                sub = self._platform.data / name
                self._watch(sub, name, LOCKS_MASK if name == "locks" else BACKUPS_MASK)
                changed |= self._env_names
            elif role == "locks" and name in self._lock_files:
                changed.add(self._lock_files[name])
            elif role == "backups":
                parsed = backups.parse_name(name)
                if parsed is not None and parsed[0] in self._env_names:
                    changed.add(parsed[0])
        for env in sorted(changed):
            self._on_change(env)

    def stop(self) -> None:
        """Wake and end `run()` (from any thread, once); the write end is ours to close."""
        if self._wake_w < 0:
            return
        with contextlib.suppress(OSError):  # the reader is gone already
            os.write(self._wake_w, b"x")
        os.close(self._wake_w)
        self._wake_w = -1
