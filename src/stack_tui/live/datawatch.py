"""Notice lock, backup and off-host copy changes made by any process, without polling.

Textual-free. Another operator's CLI backup produces no engine event we listen
to, and a lock taken by another process none at all; both are files under
`data/`. inotify (through inotify-simple) reports them the moment they happen, so
the panes need no periodic resync. Where inotify is missing the panes still
update on engine events and on refresh (R).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stack_tui.core import backups
from stack_tui.core.environments import Environment, Platform

if TYPE_CHECKING:
    from inotify_simple import INotify

log = logging.getLogger(__name__)

#: Where ops/offsite.py records each environment's last off-host copy ({env}.json, by
#: rename): its STATE_DIR, named here so that the watcher does not import the operations.
OFFSITE_DIR = "offsite"


class DataWatcher:
    """Report "env X changed" for lock, backup and off-host state changes, until `stop()`."""

    def __init__(self, platform: Platform, on_change: Callable[[str], object]) -> None:
        self._platform = platform
        self._on_change = on_change
        envs: tuple[Environment, ...] = (platform.dev, platform.prod)
        self._lock_files = {f"{env.project}.lock": env.name for env in envs}
        self._env_names = {env.name for env in envs}
        self._wake_r, self._wake_w = os.pipe()
        self._watches: dict[int, str] = {}
        self._masks: dict[str, int] = {}

    def run(self) -> None:
        # Imported here, in the watcher's thread: loading libc through ctypes.util is not
        # work for the first frame.
        from inotify_simple import INotify, flags

        self._masks = {
            # The lock holder writes its record on acquire and truncates it on release.
            "locks": flags.MODIFY | flags.CLOSE_WRITE | flags.CREATE | flags.DELETE,
            # Backups appear by rename and go by unlink; partial dumps (MODIFY floods) are
            # ignored.
            "backups": flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE | flags.CLOSE_WRITE,
            # The last copy's state is written under a temporary name, then renamed.
            OFFSITE_DIR: flags.MOVED_TO,
            "data": flags.CREATE | flags.MOVED_TO,
        }
        try:
            inotify = INotify()
        except OSError as err:
            log.warning("no inotify (%s): lock and backup files are read on refresh only", err)
            os.close(self._wake_r)
            return
        with inotify:
            try:
                self._watch(inotify, self._platform.data, "data")
                self._watch(inotify, self._platform.locks_dir, "locks")
                self._watch(inotify, self._platform.backups_dir, "backups")
                self._watch(inotify, self._platform.data / OFFSITE_DIR, OFFSITE_DIR)
                while True:
                    ready, _, _ = select.select([inotify, self._wake_r], [], [])
                    if self._wake_r in ready:
                        return
                    self._dispatch(inotify)
            finally:
                os.close(self._wake_r)

    def _watch(self, inotify: INotify, path: Path, role: str) -> None:
        with contextlib.suppress(OSError):  # not there yet: the "data" watch adds it later
            self._watches[inotify.add_watch(path, self._masks[role])] = role

    def _dispatch(self, inotify: INotify) -> None:
        changed: set[str] = set()
        for event in inotify.read(timeout=0):
            role, name = self._watches.get(event.wd), event.name
            if role == "data" and name in ("locks", "backups", OFFSITE_DIR):
                self._watch(inotify, self._platform.data / name, name)
                changed |= self._env_names
            elif role == "locks" and name in self._lock_files:
                changed.add(self._lock_files[name])
            elif role == OFFSITE_DIR and name.removesuffix(".json") in self._env_names:
                changed.add(name.removesuffix(".json"))
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
