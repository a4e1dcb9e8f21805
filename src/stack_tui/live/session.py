"""One session of the TUI: both environments as last read, the operations ours and followed,
the checks, and what keeps all of it current.

The app owns one Session and gives it a Host (its timers, threads, a thread-safe call into
the UI thread, the question dialog). Every state change is published as a `Change`; screens
subscribe and render, and never look for each other. Session methods run on the UI thread;
blocking work (status reads, operations, checks, watchers) runs in host threads that hand
their results back through `Host.to_ui`.

There is no periodic resync. Everything a pane shows comes from the engine (its event
stream) or from files under data/ (inotify). The environments on an engine are re-read, and
the checks run again, when that engine comes back; both environments after each operation of
ours and on refresh. A timer would only add wake-ups (bytes over SSH) to hide a bug we would
rather see.
"""

from __future__ import annotations

import enum
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from stack_tui.core.environments import Environment
from stack_tui.core.locks import Holder
from stack_tui.live.backend import VERIFY_NEWEST, Backend, Sampler
from stack_tui.live.runs import DiedRecord, Run, who
from stack_tui.ops.status import EnvStatus

if TYPE_CHECKING:
    from stack_tui.core.parity import CheckReport
    from stack_tui.live.datawatch import DataWatcher
    from stack_tui.live.watcher import EngineWatcher
    from stack_tui.ops.events import ConfirmationNeeded, Event

log = logging.getLogger(__name__)

#: A burst of engine events (kill, die, stop...) arrives within a few ms: one refresh.
DEBOUNCE = 0.03
#: Resource-use samples arrive once a second per container: shown together, once a second.
RESOURCES_REDRAW = 1.0


class Aspect(enum.Enum):
    """What a Change is about."""

    STATUS = "status"  # an environment's snapshot (or the engine's reachability)
    RUN = "run"  # an operation's event, or its waiting for an answer
    CHECKS = "checks"  # the checks started or finished
    PROBLEM = "problem"  # something the operator should be told once (a failed read)
    RESOURCES = "resources"  # new resource-use samples (at most once a second), or a problem


@dataclass(frozen=True)
class Change:
    aspect: Aspect
    #: The environment concerned; None: both.
    env: str | None = None
    run: Run | None = None
    event: Event | None = None
    message: str = ""


class Cancellable(Protocol):
    def stop(self) -> object: ...


class Host(Protocol):
    """What the session needs from the UI toolkit."""

    def later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...

    def in_thread(self, work: Callable[[], None], group: str) -> None: ...

    def to_ui(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the UI thread soon (callable from any thread)."""

    def after_paint(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the UI thread once what is pending has been painted."""

    def changed(self, change: Change) -> None: ...

    def ask(self, run: Run, question: ConfirmationNeeded) -> bool:
        """Called from an operation's thread: show the question, block until answered
        (False when the session closes meanwhile)."""


@dataclass
class _Refresh:
    """Per environment: at most one status read in flight, and one more queued."""

    timer: Cancellable | None = None
    busy: bool = False
    again: bool = False
    reload: bool = False


class Session:
    def __init__(self, backend: Backend, host: Host) -> None:
        self.backend = backend
        self.host = host
        platform = backend.platform
        self.envs: dict[str, Environment] = {"dev": platform.dev, "prod": platform.prod}
        self.statuses: dict[str, EnvStatus] = {}
        #: env -> (message, hint) while the watcher of that env's engine says it is gone.
        self._down: dict[str, tuple[str, str]] = {}
        self.runs: dict[str, Run] = {}
        self.follows: dict[str, Run] = {}
        self.checks: CheckReport | None = None
        self.checks_error = ""
        self.checks_running = False
        self._checks_again = False
        self._refresh = {name: _Refresh() for name in self.envs}
        self._verifying: set[str] = set()
        #: One per engine (envs on the same engine share one), each in its own thread: an
        #: engine that does not answer never holds up the other env's events.
        self._engine_watchers: list[EngineWatcher] = []
        self._data_watcher: DataWatcher | None = None
        self._closing = threading.Event()
        #: Who wants which environments' resource use (the main screen, a detail view):
        #: streams run for the union, and for nothing when nobody looks.
        self._resource_viewers: dict[str, frozenset[str]] = {}
        self.samplers: dict[str, Sampler] = {}
        self.resource_problems: dict[str, str] = {}
        self._resources_due = threading.Event()
        #: Engine events from here on are replayed when the subscription starts (after the
        #: first paint, so that it does not compete with it), so none is missed.
        self._since = backend.now() - 1

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """First snapshots (the prefetched ones when ready); the watchers start once both
        panes are on screen (`_started`)."""
        for name, env in self.envs.items():
            early = self.backend.prefetched(env)
            if early is None:
                self._fetch(name)
            else:  # read while Textual was being imported: no thread round trip, one paint
                self._apply(early)

    def _watch(self) -> None:
        """The engines' events and the data files' changes (each watcher in its thread)."""
        from stack_tui.core import endpoints, engine
        from stack_tui.live.datawatch import DataWatcher
        from stack_tui.live.watcher import EngineWatcher

        to_ui = self.host.to_ui
        groups: dict[str, list[Environment]] = {}
        for env in self.envs.values():
            groups.setdefault(endpoints.setting(env), []).append(env)
        for envs in groups.values():
            names = tuple(env.name for env in envs)
            self._engine_watchers.append(
                EngineWatcher(
                    tuple(envs),
                    on_change=lambda env: to_ui(partial(self.request_refresh, env)),
                    on_down=partial(self._watcher_says_gone, names),
                    on_up=partial(to_ui, partial(self._engine_back, names)),
                    connect=partial(engine.for_env, envs[0]),
                    unreachable=partial(engine.unreachable_for, envs[0]),
                )
            )
        self._data_watcher = DataWatcher(
            self.backend.platform,
            on_change=lambda env: to_ui(partial(self.request_refresh, env)),
        )
        self.host.in_thread(self._data_watcher.run, "data-files")
        for index, watcher in enumerate(self._engine_watchers):
            self.host.in_thread(partial(watcher.run, since=self._since), f"engine-events-{index}")

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        """Stop watching; running operations stop at their next event (their cleanup runs)."""
        self._closing.set()
        self.want_resources("*", set())
        for watcher in (*self._engine_watchers, self._data_watcher):
            if watcher is not None:
                watcher.stop()

    @property
    def populated(self) -> bool:
        return len(self.statuses) == len(self.envs)

    # --- status -----------------------------------------------------------------------------

    def request_refresh(self, env: str, *, reload: bool = False) -> None:
        """Coalesce: one pending timer, at most one read in flight, one more queued after it."""
        state = self._refresh[env]
        state.reload |= reload
        if state.busy:
            state.again = True
        elif state.timer is None:
            state.timer = self.host.later(DEBOUNCE, partial(self._fetch, env))

    def refresh_all(self) -> None:
        for env in self.envs:
            self.request_refresh(env, reload=True)

    def _fetch(self, env: str) -> None:
        state = self._refresh[env]
        state.timer, state.busy = None, True
        reload, state.reload = state.reload, False
        self.host.in_thread(partial(self._read_status, env, reload), f"status-{env}")

    def _read_status(self, env: str, reload: bool) -> None:
        try:
            snapshot = self.backend.status(self.envs[env], reload=reload)
        except Exception as err:  # a bug, not an operator error: the pane must not stay stuck
            log.exception("reading %s's status failed", env)
            self.host.to_ui(partial(self._read_failed, env, err))
            return
        self.host.to_ui(partial(self._fetched, snapshot))

    def _read_failed(self, env: str, err: Exception) -> None:
        self._refresh[env].busy = False
        self.host.changed(
            Change(Aspect.PROBLEM, env, message=f"Reading {env}'s status failed: {err}")
        )

    def _fetched(self, snapshot: EnvStatus) -> None:
        state = self._refresh[snapshot.env]
        state.busy = False
        self._apply(snapshot)
        if state.again:
            state.again = False
            self.request_refresh(snapshot.env)

    def _apply(self, snapshot: EnvStatus) -> None:
        first = not self.populated
        self.statuses[snapshot.env] = snapshot
        # engine_down is cleared only by the watcher (_engine_back): a snapshot read before
        # the engine went away can arrive after it did, and must not say it is back.
        self.host.changed(Change(Aspect.STATUS, snapshot.env))
        sampler = self.samplers.get(snapshot.env)
        if sampler is not None:  # a container restarted or went: follow the running ones
            self.host.in_thread(sampler.sync, f"resources-{snapshot.env}")
        if first and self.populated:
            self.host.after_paint(self._started)
        elif not first:
            self._verify_if_needed(snapshot)

    def _started(self) -> None:
        """Both panes are on screen: now the work that could wait."""
        if not gc.isenabled():  # run() paused the collector for startup
            gc.enable()
            gc.freeze()  # what startup built lives as long as the app: never scan it again
        if self.closing:
            return
        if self.backend.live:  # and the first snapshots skipped the compose config: read
            # both again, after the watchers start (a change meanwhile is in that read)
            self._watch()
            for env in self.envs:
                self.request_refresh(env)
        self.run_checks()
        for snapshot in self.statuses.values():
            self._verify_if_needed(snapshot)

    def _verify_if_needed(self, snapshot: EnvStatus) -> None:
        if (
            self.backend.live
            and snapshot.env not in self._verifying
            and any(info.verified is None for info in snapshot.backups[:VERIFY_NEWEST])
        ):
            self._verifying.add(snapshot.env)
            self.host.in_thread(partial(self._verify, snapshot.env), f"verify-{snapshot.env}")

    def _verify(self, env: str) -> None:
        try:
            if self.backend.verify_backups(self.envs[env]):
                self.host.to_ui(partial(self.request_refresh, env))
        except Exception:  # a pane keeps "-" for what could not be verified
            log.exception("verifying %s's backups failed", env)
        finally:
            self._verifying.discard(env)

    @property
    def engine_down(self) -> tuple[str, str] | None:
        """(message, hint) of an engine its watcher says is gone (any env's), else None."""
        return next(iter(self._down.values()), None)

    def engine_down_for(self, env: str) -> tuple[str, str] | None:
        return self._down.get(env)

    def _watcher_says_gone(self, envs: tuple[str, ...], error: str, hint: str) -> None:
        """From a watcher's thread."""
        self.host.to_ui(partial(self._engine_gone, envs, error, hint))

    def _engine_gone(self, envs: tuple[str, ...], error: str, hint: str) -> None:
        for env in envs:
            self._down[env] = (error, hint)
        self.host.changed(Change(Aspect.STATUS))

    def _engine_back(self, envs: tuple[str, ...]) -> None:
        for env in envs:
            self._down.pop(env, None)
            self.request_refresh(env, reload=True)
        self.host.changed(Change(Aspect.STATUS))
        self.run_checks()  # checks run while it was gone failed for that alone

    # --- who holds what -----------------------------------------------------------------------

    def other_holder(self, env: str) -> Holder | None:
        """The lock holder of `env` when it is another process (ours shows as our run)."""
        snapshot = self.statuses.get(env)
        holder = snapshot.holder if snapshot else None
        return holder if holder is not None and holder.pid != os.getpid() else None

    def busy_with(self, env: str) -> str:
        """The operation running on `env` (ours or another process's), or ""."""
        run = self.runs.get(env)
        if run is not None and run.running:
            return run.operation
        snapshot = self.statuses.get(env)
        if snapshot is not None and snapshot.holder is not None:
            return snapshot.holder.operation
        return ""

    def died(self, env: str) -> DiedRecord | None:
        """The environment's last operation, when its process died without a Result and no
        operation ran since (status's record; ours or a followed one may be newer)."""
        record: DiedRecord | None = getattr(self.statuses.get(env), "died", None)
        if record is None:
            return None
        newer = [
            run
            for run in (self.runs.get(env), self.follows.get(env))
            if run is not None and run.started > record.started
        ]
        return None if newer else record

    def last_run(self, env: str) -> Run | None:
        """The newest operation seen on `env`: ours, or another process's that we followed."""
        seen = [run for run in (self.runs.get(env), self.follows.get(env)) if run is not None]
        return max(seen, key=lambda run: run.started, default=None)

    def running_operations(self) -> list[Run]:
        return [run for run in self.runs.values() if run.running]

    # --- operations ---------------------------------------------------------------------------

    def launch(self, env: Environment, operation: str, start: Callable[[], Iterator[Event]]) -> Run:
        run = Run(env.name, operation, started=self.backend.now())
        self.runs[env.name] = run
        self.host.in_thread(partial(self._operate, run, start), f"op-{env.name}")
        self.host.changed(Change(Aspect.RUN, env.name, run))
        return run

    def _operate(self, run: Run, start: Callable[[], Iterator[Event]]) -> None:
        from stack_tui.live import driving  # not needed before the first operation

        driving.drive(
            run,
            start,
            post=partial(self._post, run),
            ask=partial(self._ask, run),
            cancelled=self._closing.is_set,
        )

    def _ask(self, run: Run, question: ConfirmationNeeded) -> bool:
        """From the operation's thread: the run waits for the operator while the dialog shows."""
        self.host.to_ui(partial(self._waiting, run, question))
        try:
            return self.host.ask(run, question)
        finally:
            self.host.to_ui(partial(self._waiting, run, None))

    def _waiting(self, run: Run, question: ConfirmationNeeded | None) -> None:
        run.waiting = question
        self.host.changed(Change(Aspect.RUN, run.env, run))

    def _post(self, run: Run, event: Event) -> None:
        self.host.to_ui(partial(self._event, run, event))

    def _event(self, run: Run, event: Event) -> None:
        from stack_tui.ops.events import Result

        run.add(event)
        if self.closing:  # an operation stopped by quitting: nothing left to show
            return
        self.host.changed(Change(Aspect.RUN, run.env, run, event))
        if isinstance(event, Result) and run.ours:
            self.request_refresh(run.env, reload=True)
            self.run_checks()

    def follow(self, env: Environment) -> Run | None:
        """Another process's running operation on `env`, followed through its event log; or
        the one that died, read from its log."""
        holder = self.backend.holder(env)
        if holder is None or holder.pid == os.getpid() or not holder.log:
            return self._replay_died(env)
        run = self.follows.get(env.name)
        if run is None or run.started != holder.started:
            run = Run(
                env.name,
                holder.operation,
                started=holder.started,
                owner=who(holder),
            )
            self.follows[env.name] = run
            self.host.in_thread(
                partial(self._follow_log, run, Path(holder.log), env), f"follow-{env.name}"
            )
        return run

    def _replay_died(self, env: Environment) -> Run | None:
        record = self.died(env.name)
        if record is None:
            return None
        run = self.follows.get(env.name)
        if run is None or run.started != record.started:
            run = Run(env.name, record.operation, started=record.started, owner=f"pid {record.pid}")
            self.follows[env.name] = run
            self.host.in_thread(
                partial(self._follow_log, run, Path(record.log), None), f"follow-{env.name}"
            )
        return run

    def _follow_log(self, run: Run, path: Path, env: Environment | None) -> None:
        """Tail `path` while `env`'s lock is held (None: read a finished log to its end)."""

        def held() -> bool:
            return env is not None and self.backend.holder(env) is not None

        from stack_tui.live import driving

        driving.follow(
            run, path, post=partial(self._post, run), held=held, cancelled=self._closing.is_set
        )

    # --- resource use -----------------------------------------------------------------------

    def want_resources(self, viewer: str, envs: set[str]) -> None:
        """`viewer` shows the resource use of `envs` (empty: none). Streams are opened for
        every environment someone shows and closed for the others ("*": everyone stops)."""
        if viewer == "*":
            self._resource_viewers.clear()
        elif envs:
            self._resource_viewers[viewer] = frozenset(envs)
        else:
            self._resource_viewers.pop(viewer, None)
        wanted = set().union(*self._resource_viewers.values()) if not self.closing else set()
        for name in set(self.samplers) - wanted:
            self.samplers.pop(name).stop()
            self.resource_problems.pop(name, None)
        for name in sorted(wanted - set(self.samplers)):
            sampler = self.backend.resource_use(
                self.envs[name],
                on_sample=lambda service, sample: self._sampled(),
                on_problem=partial(self._resource_problem_from_thread, name),
            )
            self.samplers[name] = sampler
            self.host.in_thread(sampler.sync, f"resources-{name}")

    def _sampled(self) -> None:
        """From a stream's thread: one redraw a second at most, whatever the number of
        containers."""
        if not self._resources_due.is_set():
            self._resources_due.set()
            self.host.to_ui(self._show_resources_soon)

    def _show_resources_soon(self) -> None:
        self.host.later(RESOURCES_REDRAW, self._show_resources)

    def _show_resources(self) -> None:
        self._resources_due.clear()
        if self.samplers:
            self.host.changed(Change(Aspect.RESOURCES))

    def _resource_problem_from_thread(self, env: str, message: str) -> None:
        self.host.to_ui(partial(self._resource_problem, env, message))

    def _resource_problem(self, env: str, message: str) -> None:
        if env in self.samplers:
            self.resource_problems[env] = message
            self.host.changed(Change(Aspect.RESOURCES, env))

    # --- checks -----------------------------------------------------------------------------

    def run_checks(self) -> None:
        """Run the checks; while they run, once more after (what changed meanwhile counts)."""
        if self.checks_running:
            self._checks_again = True
            return
        self.checks_running = True
        self.host.changed(Change(Aspect.CHECKS))
        self.host.in_thread(self._run_checks, "checks")

    def _run_checks(self) -> None:
        try:
            report = self.backend.checks()
        except Exception as err:  # run_checks never raises; if it did, say so
            log.exception("the checks failed")
            self.host.to_ui(partial(self._checks_done, None, str(err)))
            return
        self.host.to_ui(partial(self._checks_done, report, ""))

    def _checks_done(self, report: CheckReport | None, error: str) -> None:
        self.checks_running = False
        self.checks, self.checks_error = report, error
        self.host.changed(Change(Aspect.CHECKS))
        if self._checks_again:
            self._checks_again = False
            self.run_checks()
