"""Everything the TUI asks of the world, behind one seam.

The screens never touch docker-py, the lock files or the operations directly:
they call a Backend. `LiveBackend` is the real one; tests and the screenshot
script pass a fixed one (deterministic statuses, a frozen clock, scripted
operations), which is what makes snapshot tests possible. Every method may
block and is called from a thread worker, except `now` and `holder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stack_tui.core import backups, compose, engine, locks
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import StackError
from stack_tui.ops.status import EnvStatus, status

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # what only operations and other screens need is imported when used
    from stack_tui.core import console, stats
    from stack_tui.core.logs import LineSource
    from stack_tui.core.parity import CheckReport
    from stack_tui.core.records import Record
    from stack_tui.ops.events import Event


#: Backups re-read and verified in the background, per environment: the newest ones, which a
#: pane shows and a restore most likely uses (older ones show "-", not checked).
VERIFY_NEWEST = 5


class Sampler(Protocol):
    """One environment's resource use (core.stats.EnvSampler): `sync()` blocks (call it from a
    thread) and follows the running containers; `stop()` closes every stream."""

    histories: dict[str, stats.History]

    @property
    def open_streams(self) -> int: ...

    def sync(self) -> None: ...

    def stop(self) -> None: ...


class Backend(Protocol):
    platform: Platform
    #: False: no engine or data-dir subscriptions (fixed data never changes).
    live: bool

    def now(self) -> float: ...

    def status(self, env: Environment, *, reload: bool = False) -> EnvStatus: ...

    def prefetched(self, env: Environment) -> EnvStatus | None: ...

    def holder(self, env: Environment) -> locks.Holder | None: ...

    def verify_backups(self, env: Environment) -> bool: ...

    def deploy(self, env: Environment) -> Iterator[Event]: ...

    def backup(self, env: Environment, *, keep: int) -> Iterator[Event]: ...

    def restore(
        self, env: Environment, file: Path, *, allow_cross_env: bool
    ) -> Iterator[Event]: ...

    def undo_restore(self, env: Environment) -> Iterator[Event]: ...

    def history(self, env: Environment) -> list[Record]: ...

    def rollback(self, env: Environment, *, to: str, with_data: bool) -> Iterator[Event]: ...

    def offsite_copies(self) -> list[backups.BackupInfo] | None: ...

    def restore_copy(
        self, env: Environment, name: str, *, allow_cross_env: bool
    ) -> Iterator[Event]: ...

    def checks(self) -> CheckReport: ...

    def log_sources(self, env: Environment, services: list[str]) -> list[LineSource]:
        """Each service's log (its container in the env's project); raises StackError. Of
        several services, those without a container are left out."""
        ...

    def resource_use(
        self,
        env: Environment,
        on_sample: Callable[[str, stats.Sample], None],
        on_problem: Callable[[str], None],
    ) -> Sampler: ...

    def shell(self, env: Environment, service: str) -> console.Session: ...

    def psql(self, env: Environment, *, read_only: bool) -> console.Session: ...

    def attach(self, session: console.Session) -> int:
        """Run an interactive session on this terminal (the TUI is suspended meanwhile)."""


class LiveBackend:
    """The real engine, lock files, backups directory and operations of a Platform."""

    live = True

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._services: dict[str, list[str]] = {}
        #: A client per env, each made under its env's own lock: a remote engine that takes its
        #: time to answer never holds up the other env's read.
        self._clients: dict[str, Any] = {}
        self._client_locks = {name: threading.Lock() for name in ("dev", "prod")}
        self._verified: dict[tuple[str, int, int], bool] = {}
        self._verify_lock = threading.Lock()
        self._prefetched: dict[str, Future[EnvStatus]] = {}

    def now(self) -> float:
        return time.time()

    def prefetch(self) -> None:
        """Start both first snapshots now, while Textual is still being imported."""
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stack-tui-prefetch")
        for env in (self.platform.dev, self.platform.prod):
            self._prefetched[env.name] = pool.submit(self._first, env)
        pool.shutdown(wait=False)

    def _first(self, env: Environment) -> EnvStatus:
        """What the engine runs, without the ~0.1 s of CPU Compose takes to render the config
        on a 2-core host, and without docker-py's import (QuickEngine); the session re-reads
        both environments fully right after the first paint."""
        quick = engine.QuickEngine.for_env(env)
        if quick is None:
            return self._read(env, False, [])
        return self._with_verification(status(self.platform, env, quick, []))

    def prefetched(self, env: Environment) -> EnvStatus | None:
        """The snapshot `prefetch()` started, if it is ready (never blocks)."""
        early = self._prefetched.get(env.name)
        if early is None or not early.done():
            return None
        del self._prefetched[env.name]
        return early.result()

    def status(self, env: Environment, *, reload: bool = False) -> EnvStatus:
        """A snapshot; the rendered service list is cached (Compose takes ~0.1 s to render it)
        and re-read on `reload` (start, refresh, after a deploy, engine back)."""
        early = self._prefetched.pop(env.name, None)
        if early is not None and not reload:
            return early.result()
        return self._read(env, reload)

    def _read(self, env: Environment, reload: bool, names: list[str] | None = None) -> EnvStatus:
        if names is None:
            names = self._services.get(env.name)
        if names is None or reload:
            try:
                names = compose.service_names(env)
                self._services[env.name] = names
            except StackError:
                names = None  # status() renders it again and reports the error
        for _attempt in ("cached", "fresh"):
            with self._client_locks[env.name]:
                client = self._clients.get(env.name)
                cached = client is not None
                if client is None:
                    with contextlib.suppress(StackError):  # status() reports it
                        client = self._clients[env.name] = engine.for_env(env)
            snapshot = status(self.platform, env, client, names)
            if not snapshot.error:
                break
            self._clients.pop(env.name, None)  # restarted? connect afresh next time
            if not (cached and snapshot.engine_unreachable):
                break  # a cached client may point at what is gone (a remote engine's old
                # tunnel): one more read with a fresh one, now rather than at the next event
        from stack_tui.ops.offsite import pane_state  # not on the first snapshot's path

        snapshot = dataclasses.replace(snapshot, offsite=pane_state(self.platform, env))
        return self._with_verification(snapshot)

    def _with_verification(self, snapshot: EnvStatus) -> EnvStatus:
        rows = tuple(
            dataclasses.replace(info, verified=self._verified.get(_identity(info)))
            for info in snapshot.backups
        )
        return dataclasses.replace(snapshot, backups=rows)

    def verify_backups(self, env: Environment) -> bool:
        """Verify the newest backups not verified yet; True if any result is new."""
        found = False
        for info in backups.list_backups(self.platform.backups_dir, env.name)[:VERIFY_NEWEST]:
            key = _identity(info)
            with self._verify_lock:
                if key in self._verified:
                    continue
            ok = backups.verify_cached(info.path).ok  # instant for one we just wrote
            with self._verify_lock:
                self._verified[key] = ok
            found = True
        return found

    def holder(self, env: Environment) -> locks.Holder | None:
        return locks.holder(self.platform.locks_dir, env.project)

    def deploy(self, env: Environment) -> Iterator[Event]:
        from stack_tui.ops.deploy import deploy

        return deploy(self.platform, env)

    def backup(self, env: Environment, *, keep: int) -> Iterator[Event]:
        from stack_tui.ops.backup import backup

        return backup(self.platform, env, keep=keep)

    def restore(self, env: Environment, file: Path, *, allow_cross_env: bool) -> Iterator[Event]:
        from stack_tui.ops.restore import restore

        return restore(self.platform, env, file, allow_cross_env=allow_cross_env)

    def undo_restore(self, env: Environment) -> Iterator[Event]:
        from stack_tui.ops.restore import undo_restore

        return undo_restore(self.platform, env)

    def history(self, env: Environment) -> list[Record]:
        """The env's deploy records (small JSON files: read on the spot)."""
        from stack_tui.core import records

        return records.history(self.platform, env.name)

    def rollback(self, env: Environment, *, to: str, with_data: bool) -> Iterator[Event]:
        from stack_tui.ops.rollback import rollback

        return rollback(self.platform, env, to=to, with_data=with_data)

    def offsite_copies(self) -> list[backups.BackupInfo] | None:
        """Both environments' off-host copies as backup rows (asks the repository: slow);
        None when off-host copies are off."""
        from stack_tui.core import offsite as configuration
        from stack_tui.ops import offsite

        if configuration.load(self.platform.dotenv) is None:
            return None
        return [offsite.as_backup_info(self.platform, c) for c in offsite.copies(self.platform)]

    def restore_copy(
        self, env: Environment, name: str, *, allow_cross_env: bool
    ) -> Iterator[Event]:
        from stack_tui.ops.offsite import restore_copy

        return restore_copy(self.platform, env, name, allow_cross_env=allow_cross_env)

    def checks(self) -> CheckReport:
        from stack_tui.ops.check import run_checks

        return run_checks(self.platform)

    def log_sources(self, env: Environment, services: list[str]) -> list[LineSource]:
        from stack_tui.core import logs

        return list(logs.sources_for(env, services, skip_missing=len(services) > 1))

    def _engine(self, env: Environment) -> Any:
        """The env's client (made on first use; status reads make it too)."""
        with self._client_locks[env.name]:
            client = self._clients.get(env.name)
            if client is None:
                client = self._clients[env.name] = engine.for_env(env)
            return client

    def resource_use(
        self,
        env: Environment,
        on_sample: Callable[[str, stats.Sample], None],
        on_problem: Callable[[str], None],
    ) -> Sampler:
        from stack_tui.core import stats

        return stats.EnvSampler(env, lambda: self._engine(env), on_sample, on_problem)

    def shell(self, env: Environment, service: str) -> console.Session:
        from stack_tui.core import console

        return console.shell(self._engine(env), env, service)

    def psql(self, env: Environment, *, read_only: bool) -> console.Session:
        from stack_tui.core import console

        return console.psql(self._engine(env), env, read_only=read_only)

    def attach(self, session: console.Session) -> int:
        from stack_tui.core import console

        return console.run(self.platform, session, sys.stdout, clear=True)


def _identity(info: backups.BackupInfo) -> tuple[str, int, int]:
    try:
        mtime = info.path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (str(info.path), info.size, mtime)
