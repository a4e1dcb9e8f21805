"""Both environments side by side, live; every action starts here.

This screen owns the live subscriptions (engine events, lock and backup files),
the debounced per-environment refresh, and the operation workers. Each kind of
worker has its own group (status-dev, op-prod, ...): `exclusive` cancels by
node and group, and a status refresh must never cancel a deploy. The other screens
are imported when first opened: what launch does not need, launch does not import.

There is no periodic resync. Everything a pane shows comes from the engine (its
event stream) or from files under data/ (inotify); the panes re-list both
environments when the engine comes back, after each operation of ours, and on R.
A timer would only add wake-ups (bytes over SSH) to hide a bug we would rather see.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from stack_tui.core import backups, engine
from stack_tui.core.environments import Environment
from stack_tui.core.errors import StackError
from stack_tui.core.locks import Holder
from stack_tui.ops.events import ConfirmationNeeded, Event, Result, StepStarted
from stack_tui.ops.status import EnvStatus, next_change
from stack_tui.tui import driving, plans
from stack_tui.tui.backend import VERIFY_NEWEST, Backend
from stack_tui.tui.datawatch import DataWatcher
from stack_tui.tui.messages import (
    ChecksDone,
    EngineDown,
    EngineUp,
    EnvChanged,
    OperationEvent,
    StatusFetched,
)
from stack_tui.tui.runs import Run
from stack_tui.tui.watcher import EngineWatcher
from stack_tui.tui.widgets.env_pane import EnvPane, activity, clock, describe_holder
from stack_tui.tui.widgets.status_bar import StatusBar, checks_part, engine_part, env_summary
from stack_tui.tui.widgets.tables import next_redraw

if TYPE_CHECKING:
    from stack_tui.core.parity import CheckReport
    from stack_tui.tui.screens.restore import Pick

#: A burst of engine events (kill, die, stop...) arrives within a few ms: one refresh.
DEBOUNCE = 0.03
#: Below this width the panes are switchable (1, 2, tab) instead of side by side.
NARROW = 100
MIN_WIDTH, MIN_HEIGHT = 60, 16


@dataclass
class _Refresh:
    """Per environment: at most one status read in flight, and one more queued."""

    timer: Timer | None = None
    busy: bool = False
    again: bool = False
    reload: bool = False


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("d", "deploy", "Deploy", tooltip="Deploy the focused environment (confirm first)"),
        Binding("b", "backup", "Backup", tooltip="Back up the focused environment's database"),
        Binding("r", "restore", "Restore", tooltip="Pick a backup and restore it"),
        Binding("l", "logs", "Logs", tooltip="Follow the logs of the highlighted service"),
        Binding(
            "o",
            "operation",
            "Progress",
            tooltip="Show the running or last operation (also another process's)",
        ),
        Binding("c", "check", "Check", tooltip="Parity, drift and hygiene checks"),
        Binding("ctrl+r", "refresh", "Refresh", tooltip="Re-read both environments"),
        Binding("R", "refresh", "Refresh", show=False),
        Binding(
            "tab",
            "switch_pane",
            "Other pane",
            show=False,
            tooltip="Switch between the dev and PROD panes (also 1 and 2)",
        ),
        Binding("1", "focus_env('dev')", "dev pane", show=False, tooltip="Focus the dev pane"),
        Binding("2", "focus_env('prod')", "PROD pane", show=False, tooltip="Focus the PROD pane"),
        Binding("q", "app.quit", "Quit", tooltip="Quit (asks first while an operation runs)"),
    ]
    MUTATING = frozenset({"deploy", "backup", "restore"})

    def __init__(self, backend: Backend, read_only: bool) -> None:
        super().__init__()
        self.backend = backend
        self.read_only = read_only
        platform = backend.platform
        self.envs: dict[str, Environment] = {"dev": platform.dev, "prod": platform.prod}
        self.current = "dev"
        self.statuses: dict[str, EnvStatus] = {}
        self.engine_down: tuple[str, str] | None = None
        self.runs: dict[str, Run] = {}
        self.follows: dict[str, Run] = {}
        self.checks: CheckReport | None = None
        self.checks_error = ""
        self.checks_running = False
        self._refresh = {name: _Refresh() for name in self.envs}
        self._verifying: set[str] = set()
        self._age_timer: Timer | None = None
        self._engine_watcher: EngineWatcher | None = None
        self._data_watcher: DataWatcher | None = None
        #: Engine events from here on are replayed when the subscription starts (after the
        #: first paint, so that it does not compete with it), so none is missed.
        self._since = backend.now() - 1

    # --- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        header = Header(show_clock=False, icon="")
        header.set_class(self.read_only, "-read-only")
        yield header
        yield StatusBar(id="status-bar")
        with Horizontal(id="panes"):
            for env in self.envs.values():
                yield EnvPane(env)
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)
        self._set_current("dev")
        for name, env in self.envs.items():
            early = self.backend.prefetched(env)
            if early is None:
                self._fetch(name)
            else:  # read while Textual was being imported: no worker round trip, one paint
                self._apply(early)
        if self.backend.live:
            post = self.post_message
            self._engine_watcher = EngineWatcher(
                tuple(self.envs.values()),
                on_change=lambda env: post(EnvChanged(env)),
                on_down=lambda error, hint: post(EngineDown(error, hint)),
                on_up=lambda: post(EngineUp()),
            )
            self._data_watcher = DataWatcher(
                self.backend.platform, on_change=lambda env: post(EnvChanged(env))
            )
            self._watch(self._data_watcher.run, "data-files")
        self._show_all()

    def _watch(self, loop: Callable[[], None], group: str) -> None:
        self.run_worker(loop, thread=True, group=group, exit_on_error=False, name=group)

    def on_unmount(self) -> None:
        for watcher in (self._engine_watcher, self._data_watcher):
            if watcher is not None:
                watcher.stop()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        narrow = width < NARROW
        self.set_class(narrow, "-narrow")
        footer = self.query_one(Footer)
        footer.compact = narrow
        footer.show_command_palette = not narrow  # still ctrl+p, and listed by ?
        tiny = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(tiny, "-tiny")
        if tiny:
            self.query_one("#too-small", Static).update(
                f"Terminal too small ({width}x{height}).\n"
                f"stack-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}: enlarge the window.\n"
                "q quits."
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only mode removes the mutating actions: no key, no footer entry, no command."""
        return not (self.read_only and action in self.MUTATING)

    # --- focus ------------------------------------------------------------------------------

    def pane(self, name: str) -> EnvPane:
        return self.query_one(f"#pane-{name}", EnvPane)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        for node in event.widget.ancestors_with_self:
            if isinstance(node, EnvPane) and node.env.name != self.current:
                self._set_current(node.env.name, focus=False)
                break

    def _set_current(self, name: str, focus: bool = True) -> None:
        self.current = name
        for env_name in self.envs:
            self.pane(env_name).set_class(env_name == name, "-current")
        if focus:
            self.call_after_refresh(self._focus_current)
        self._show_bar()

    def _focus_current(self) -> None:
        table = self.pane(self.current).services
        if table.display:
            table.focus()

    def action_switch_pane(self) -> None:
        self._set_current("prod" if self.current == "dev" else "dev")

    def action_focus_env(self, name: str) -> None:
        self._set_current(name)

    # --- live status ------------------------------------------------------------------------

    def request_refresh(self, env: str, *, reload: bool = False) -> None:
        """Coalesce: one pending timer, at most one read in flight, one more queued after it."""
        state = self._refresh[env]
        state.reload |= reload
        if state.busy:
            state.again = True
        elif state.timer is None:
            state.timer = self.set_timer(DEBOUNCE, partial(self._fetch, env))

    def _fetch(self, env: str) -> None:
        state = self._refresh[env]
        state.timer, state.busy = None, True
        reload, state.reload = state.reload, False
        self.run_worker(
            partial(self._read_status, env, reload),
            thread=True,
            group=f"status-{env}",
            exit_on_error=False,
            name=f"status-{env}",
        )

    def _read_status(self, env: str, reload: bool) -> None:
        self.post_message(StatusFetched(self.backend.status(self.envs[env], reload=reload)))

    def on_env_changed(self, message: EnvChanged) -> None:
        self.request_refresh(message.env)

    def on_status_fetched(self, message: StatusFetched) -> None:
        state = self._refresh[message.status.env]
        state.busy = False
        self._apply(message.status)
        if state.again:
            state.again = False
            self.request_refresh(message.status.env)

    def _apply(self, status: EnvStatus) -> None:
        first = len(self.statuses) < len(self.envs)
        self.statuses[status.env] = status
        # engine_down is cleared only by the watcher (on_engine_up): a snapshot read before
        # the engine went away can arrive after it did, and must not say it is back.
        self._show_env(status.env)
        if first and len(self.statuses) == len(self.envs):
            self.call_after_refresh(self._started)
        elif not first:
            self._verify_if_needed(status)

    def _started(self) -> None:
        """Both panes are on screen: now the work that could wait."""
        if not gc.isenabled():  # run() paused the collector for startup
            gc.enable()
            gc.freeze()  # what startup built lives as long as the app: never scan it again
        if self._engine_watcher is not None:
            self._watch(partial(self._engine_watcher.run, since=self._since), "engine-events")
        if self.backend.live:  # the first snapshots skipped the compose config: add it now
            for env in self.envs:
                self.request_refresh(env)
        self.run_checks()
        for status in self.statuses.values():
            self._verify_if_needed(status)

    def _verify_if_needed(self, status: EnvStatus) -> None:
        if (
            self.backend.live
            and status.env not in self._verifying
            and any(info.verified is None for info in status.backups[:VERIFY_NEWEST])
        ):
            self._verifying.add(status.env)
            self.run_worker(
                partial(self._verify, status.env),
                thread=True,
                group=f"verify-{status.env}",
                exit_on_error=False,
            )

    def _verify(self, env: str) -> None:
        try:
            if self.backend.verify_backups(self.envs[env]):
                self.post_message(EnvChanged(env))
        finally:
            self._verifying.discard(env)

    def on_engine_down(self, message: EngineDown) -> None:
        self.engine_down = (message.error, message.hint)
        self._show_all()

    def on_engine_up(self, _message: EngineUp) -> None:
        self.engine_down = None
        for env in self.envs:
            self.request_refresh(env, reload=True)
        self._show_all()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised (a bug, not an operator error) must not leave a pane stuck."""
        worker = event.worker
        if event.state is not WorkerState.ERROR:
            return
        if worker.group.startswith("status-"):
            env = worker.group.removeprefix("status-")
            self._refresh[env].busy = False
            self.notify(
                f"Reading {plans.label(env)}'s status failed: {worker.error}", severity="error"
            )
        elif worker.group == "checks":
            self.post_message(ChecksDone(None, str(worker.error)))

    # --- rendering --------------------------------------------------------------------------

    def _show_all(self) -> None:
        for env in self.envs:
            self._show_env(env)

    def _show_env(self, env: str) -> None:
        now = self.backend.now()
        self.pane(env).show(
            self.statuses.get(env),
            now,
            self.engine_down,
            activity(self.runs.get(env), self.other_holder(env), now),
        )
        self._show_bar()
        self._schedule_age_redraw(now)

    def _schedule_age_redraw(self, now: float) -> None:
        """Redraw when a shown time would read differently (a backup's age turning "3h", an
        up-since time crossing midnight, a busy holder's minutes): one one-shot timer at that
        moment, not a ticker; nothing shown that can change, no timer at all."""
        started = [
            row.started
            for status in self.statuses.values()
            for row in status.services
            if row.started is not None and row.state == "running"
        ]
        taken = [
            info.taken.timestamp() for status in self.statuses.values() for info in status.backups
        ]
        waits = [
            next_change(now - status.holder.started)
            for status in self.statuses.values()
            if status.holder
        ]
        coarse = next_redraw(started, taken, now)
        if coarse is not None:
            waits.append(coarse)
        if self._age_timer is not None:
            self._age_timer.stop()
            self._age_timer = None
        if waits:
            self._age_timer = self.set_timer(min(waits) + 0.05, self._show_all, name="ages")

    def _show_bar(self) -> None:
        down = self.engine_down is not None or any(
            status.hint == engine.UNREACHABLE_HINT for status in self.statuses.values()
        )
        failing = None if self.checks is None else sum(not row.ok for row in self.checks.rows)
        parts = [
            env_summary(name, self.statuses.get(name), down, self._busy_with(name))
            for name in self.envs
        ]
        parts[["dev", "prod"].index(self.current)].stylize("underline")
        parts += [engine_part(down), checks_part(failing, self.checks_running, self.checks_error)]
        self.query_one(StatusBar).show(parts)

    def other_holder(self, env: str) -> Holder | None:
        """The lock holder of `env` when it is another process (ours shows as our run)."""
        status = self.statuses.get(env)
        holder = status.holder if status else None
        return holder if holder is not None and holder.pid != os.getpid() else None

    def _busy_with(self, env: str) -> str:
        run = self.runs.get(env)
        if run is not None and run.running:
            return run.operation
        status = self.statuses.get(env)
        if status is not None and status.holder is not None:
            return status.holder.operation
        return ""

    # --- actions ----------------------------------------------------------------------------

    @property
    def env(self) -> Environment:
        return self.envs[self.current]

    def action_refresh(self) -> None:
        for env in self.envs:
            self.request_refresh(env, reload=True)
        self.notify("Re-reading both environments.", timeout=2)

    def action_deploy(self) -> None:
        env = self.env
        plan = plans.deploy(env, self.statuses.get(env.name))
        self._confirm_then(env, "deploy", plan, partial(self.backend.deploy, env))

    def action_backup(self) -> None:
        env = self.env
        try:
            keep = backups.keep_setting()
        except StackError as err:
            self.notify(f"{err.message} {err.hint}", title="Refused", severity="error")
            return
        plan = plans.backup(env, self.statuses.get(env.name), keep)
        self._confirm_then(env, "backup", plan, partial(self.backend.backup, env, keep=keep))

    def action_restore(self) -> None:
        from stack_tui.tui.screens.restore import RestorePicker

        env = self.env
        if self._refuse_if_busy(env):
            return
        other = self.backend.platform.other(env).name

        def picked(pick: Pick | None) -> None:
            if pick is None or self._refuse_if_busy(env):
                return
            if pick.offsite:  # fetched into data/backups/ first, then restored as a file
                self._launch(
                    env,
                    "restore",
                    partial(
                        self.backend.restore_copy,
                        env,
                        pick.path.name,
                        allow_cross_env=pick.cross_env,
                    ),
                )
                return
            self._launch(
                env,
                "restore",
                partial(self.backend.restore, env, pick.path, allow_cross_env=pick.cross_env),
            )

        status, other_status = self.statuses.get(env.name), self.statuses.get(other)
        self.app.push_screen(
            RestorePicker(
                env,
                list(status.backups) if status else [],
                list(other_status.backups) if other_status else [],
                self.backend.now(),
                list_offsite=self.backend.offsite_copies,
            ),
            picked,
        )

    def action_logs(self) -> None:
        from stack_tui.tui.screens.logs import LogsScreen

        service = self.pane(self.current).services.cursor_key
        if service is None:
            self.notify(
                f"{plans.label(self.current)} has no service to show logs of.", severity="warning"
            )
            return
        self.app.push_screen(LogsScreen(self.backend, self.env, service))

    def action_operation(self) -> None:
        from stack_tui.tui.screens.operation import OperationScreen

        env = self.env
        holder = self.backend.holder(env)
        if holder is not None and holder.pid != os.getpid() and holder.log:
            follow = self.follows.get(env.name)
            if follow is None or follow.started != holder.started:
                follow = Run(
                    env.name,
                    holder.operation,
                    started=holder.started,
                    owner=describe_holder(holder, self.backend.now()),
                )
                self.follows[env.name] = follow
                self.run_worker(
                    partial(self._follow_log, follow, Path(holder.log), env),
                    thread=True,
                    group=f"follow-{env.name}",
                    exit_on_error=False,
                )
            self.app.push_screen(OperationScreen(follow))
        elif env.name in self.runs:
            self.app.push_screen(OperationScreen(self.runs[env.name]))
        else:
            self.notify(f"No operation has run on {plans.label(env)} since stack-tui started.")

    def action_check(self) -> None:
        from stack_tui.tui.screens.check import CheckScreen

        self.app.push_screen(
            CheckScreen(self.checks, self.checks_running, self.checks_error, rerun=self.run_checks)
        )

    # --- operations -------------------------------------------------------------------------

    def running_operations(self) -> list[str]:
        return [
            f"{run.operation} on {plans.label(run.env)}"
            for run in self.runs.values()
            if run.running
        ]

    def _refuse_if_busy(self, env: Environment) -> bool:
        """Refuse at once, naming who holds the environment (us or another process)."""
        run = self.runs.get(env.name)
        if run is not None and run.running:
            who = f"{run.operation} started by you at {clock(run.started)}"
        else:
            holder = self.backend.holder(env)
            if holder is None:
                return False
            who = describe_holder(holder, self.backend.now())
        self.notify(
            f"{plans.label(env)} is busy: {who}. Wait for it to finish (o shows it).",
            title="Refused",
            severity="warning",
            timeout=8,
        )
        return True

    def _confirm_then(
        self,
        env: Environment,
        operation: str,
        plan: plans.Plan,
        start: Callable[[], Iterator[Event]],
    ) -> None:
        from stack_tui.tui.screens.confirm import ConfirmScreen

        if self._refuse_if_busy(env):
            return

        def decided(yes: bool | None) -> None:
            if not yes:
                self.notify(f"{plan.title}: cancelled. Nothing was done.", timeout=4)
            elif not self._refuse_if_busy(env):
                self._launch(env, operation, start)

        self.app.push_screen(ConfirmScreen(plan), decided)

    def _launch(
        self, env: Environment, operation: str, start: Callable[[], Iterator[Event]]
    ) -> None:
        from stack_tui.tui.screens.operation import OperationScreen

        run = Run(env.name, operation, started=self.backend.now())
        self.runs[env.name] = run
        self.app.push_screen(OperationScreen(run))
        self.run_worker(
            partial(self._operate, run, start),
            thread=True,
            group=f"op-{env.name}",
            exit_on_error=False,
            name=f"{operation} {env.name}",
        )
        self._show_env(env.name)

    def _operate(self, run: Run, start: Callable[[], Iterator[Event]]) -> None:
        """Drive the operation's generator in this thread; answers come from modals."""
        worker = get_current_worker()
        driving.drive(
            run,
            start,
            post=lambda event: self.post_message(OperationEvent(run, event)),
            ask=partial(self._ask, run, worker=worker),
            cancelled=lambda: worker.is_cancelled,
        )

    def _ask(self, run: Run, event: ConfirmationNeeded, *, worker: Worker[None]) -> bool:
        """Show the operation's question; block this worker thread until it is answered."""
        from stack_tui.tui.screens.confirm import ConfirmScreen

        answered = threading.Event()
        answer: list[bool] = []

        def decided(yes: bool | None) -> None:
            answer.append(bool(yes))
            answered.set()

        plan = plans.Plan(
            title=f"{plans.label(event.env)} {run.operation}: confirm",
            question=event.question,
            details=list(event.details),
            require_typing=event.require_typing,
            confirm_label="Go on",
            env=event.env,
        )
        self.app.call_from_thread(self.app.push_screen, ConfirmScreen(plan), decided)
        while not answered.wait(0.25):
            if worker.is_cancelled:
                return False
        return answer[0]

    def _follow_log(self, run: Run, path: Path, env: Environment) -> None:
        """Tail another process's operation log until its Result, or until its lock is free."""
        worker = get_current_worker()
        driving.follow(
            run,
            path,
            post=lambda event: self.post_message(OperationEvent(run, event)),
            held=lambda: self.backend.holder(env) is not None,
            cancelled=lambda: worker.is_cancelled,
        )

    def on_operation_event(self, message: OperationEvent) -> None:
        from stack_tui.tui.screens.operation import OperationScreen

        run, event = message.run, message.event
        run.add(event)
        if not self.app.is_running:  # an operation stopped by quitting: nothing left to show
            return
        for screen in self.app.screen_stack:
            if isinstance(screen, OperationScreen) and screen.run is run:
                screen.sync()
        if isinstance(event, StepStarted | Result):
            self._show_env(run.env)
        if isinstance(event, Result) and run.ours:
            watching = isinstance(self.app.screen, OperationScreen) and self.app.screen.run is run
            if not watching:
                self.notify(
                    event.summary,
                    title=f"{plans.label(run.env)} {run.operation}",
                    severity="information" if event.ok else "error",
                    timeout=8,
                )
            self.request_refresh(run.env, reload=True)
            self.run_checks()

    # --- checks -----------------------------------------------------------------------------

    def run_checks(self) -> None:
        if self.checks_running:
            return
        self.checks_running = True
        self._show_checks()
        self._run_checks()

    @work(thread=True, exit_on_error=False, group="checks")
    def _run_checks(self) -> None:
        """run_checks never raises; if it did, on_worker_state_changed reports it."""
        self.post_message(ChecksDone(self.backend.checks()))

    def on_checks_done(self, message: ChecksDone) -> None:
        self.checks_running = False
        self.checks, self.checks_error = message.report, message.error
        self._show_checks()

    def _show_checks(self) -> None:
        from stack_tui.tui.screens.check import CheckScreen

        self._show_bar()
        for screen in self.app.screen_stack:
            if isinstance(screen, CheckScreen):
                screen.show(self.checks, self.checks_running, self.checks_error)
