"""Both environments side by side, live; every action starts here.

The screen renders the app's live session (stack_tui.live.session) and reacts to its
changes; the session owns the state, the subscriptions and the workers. The other screens
are imported when first opened: what launch does not need, launch does not import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from stack_tui.core import backups
from stack_tui.core.environments import Environment, label
from stack_tui.core.errors import StackError
from stack_tui.live.runs import clock, describe_holder
from stack_tui.live.session import Aspect, Change, Session
from stack_tui.ops.status import next_change
from stack_tui.tui.messages import session_changes
from stack_tui.tui.widgets.cells import next_redraw
from stack_tui.tui.widgets.env_pane import EnvPane, activity, resources_text, restores_text
from stack_tui.tui.widgets.footer_snapshot import FooterSnapshot
from stack_tui.tui.widgets.pane_snapshot import PanesSnapshot
from stack_tui.tui.widgets.status_bar import StatusBar, checks_part, engine_part, env_summary
from stack_tui.tui.widgets.title_bar import TitleBar

if TYPE_CHECKING:
    from stack_tui.ops.events import Event
    from stack_tui.tui import plans
    from stack_tui.tui.screens.restore import Pick
    from stack_tui.tui.widgets.keys_footer import KeysFooter

#: Below this width the panes are switchable (1, 2, tab) instead of side by side.
NARROW = 100
MIN_WIDTH, MIN_HEIGHT = 60, 16


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("d", "deploy", "Deploy", tooltip="Deploy the focused environment (confirm first)"),
        Binding("b", "backup", "Backup", tooltip="Back up the focused environment's database"),
        Binding("r", "restore", "Restore", tooltip="Pick a backup and restore it"),
        Binding(
            "u",
            "undo_restore",
            "Undo restore",
            show=False,
            tooltip="Swap back the database the last restore kept (confirm first)",
        ),
        Binding("l", "logs", "Logs", tooltip="Follow the logs of the highlighted service"),
        Binding(
            "L",
            "all_logs",
            "All logs",
            show=False,
            tooltip="All of the focused environment's services' logs, interleaved by time",
        ),
        Binding(
            "s",
            "shell",
            "Shell",
            show=False,
            tooltip="A shell (bash, else sh) in the highlighted service; exit returns here",
        ),
        Binding(
            "p",
            "psql",
            "psql",
            show=False,
            tooltip="psql on the focused environment's database (read-only mode: read-only)",
        ),
        # Not `u` as in other tools: `u` is undo-restore here, and the keys an operator has
        # learnt for a restore must not change.
        Binding(
            "t",
            "resources",
            "Resource use",
            show=False,
            tooltip="CPU and memory per service in the panes, on or off (off: no cost)",
        ),
        Binding(
            "T",
            "resource_history",
            "Resource history",
            show=False,
            tooltip="The focused environment's CPU and memory over the last minute",
        ),
        Binding(
            "o",
            "operation",
            "Progress",
            tooltip="Show the running or last operation (also another process's)",
        ),
        Binding("c", "check", "Check", tooltip="Parity, drift and hygiene checks"),
        Binding(
            "h",
            "history",
            "History",
            tooltip="Deploys and rollbacks of the focused environment; roll back from there",
        ),
        Binding(
            "ctrl+r",
            "refresh",
            "Refresh",
            tooltip="Re-read both environments and run the checks again",
        ),
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
    #: What read-only mode removes (psql stays, with every transaction read-only).
    MUTATING = frozenset({"deploy", "backup", "restore", "shell"})
    #: Left out of a footer too narrow for every key, first to last (the keys still work
    #: and `?` lists them): quit and help stay in sight.
    FOOTER_DROP_ORDER = ("refresh", "history", "operation", "check", "logs", "restore")

    def __init__(self, session: Session, read_only: bool) -> None:
        super().__init__()
        self.session = session
        self.backend = session.backend
        self.read_only = read_only
        self.envs = session.envs
        self.current = "dev"
        self._age_timer: Timer | None = None
        self.resources_on = False
        #: Another screen is on top, or the terminal is handed to a shell: nothing visible.
        self._covered = False
        #: Textual's footer, once it has taken the first frame's stand-in's place.
        self._footer: KeysFooter | None = None
        self._panes = {name: EnvPane(env) for name, env in self.envs.items()}
        #: Both panes in the first frame, until the real ones take its place.
        self._snapshot: PanesSnapshot | None = None

    # --- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TitleBar(classes="-read-only" if self.read_only else "")
        yield StatusBar(id="status-bar")
        for name, pane in self._panes.items():  # styled once, when mounted
            pane.set_class(name == self.current, "-current", update=False)
        self._snapshot = PanesSnapshot(list(self._panes.values()), self._swap_panes_now)
        yield self._snapshot
        yield FooterSnapshot(
            compact=self.app.size.width < NARROW, drop_order=self.FOOTER_DROP_ORDER
        )

    def on_mount(self) -> None:
        self._fit(self.size.width, self.size.height)
        self._set_current("dev")
        session_changes(self).subscribe(self, self._on_change, immediate=True)
        # immediate: the shell runs on the UI thread, so a queued message would come after it
        self.app.app_suspend_signal.subscribe(self, lambda _: self._set_covered(True), True)
        self.app.app_resume_signal.subscribe(self, lambda _: self._set_covered(False), True)
        self.session.start()
        self._show_all()
        self.call_after_refresh(self._after_first_frame)

    async def _after_first_frame(self) -> None:
        """The real panes and footer in the first frame's stand-ins' places, in one screen
        update."""
        with self.app.batch_update():
            await self._swap_panes()
            await self._swap_footer()

    def _swap_panes_now(self) -> None:
        """The snapshot cannot draw what a pane shows: the real panes, before the next frame."""
        self.call_later(self._swap_panes)

    async def _swap_panes(self) -> None:
        """The real panes, filled with what the snapshot showed, in its place (once)."""
        snapshot = self._snapshot
        if snapshot is None:
            return
        self._snapshot = None
        with self.app.batch_update():
            await snapshot.remove()
            await self.mount(Horizontal(*self._panes.values(), id="panes"), after="#status-bar")

    async def _swap_footer(self) -> None:
        from stack_tui.tui.widgets.keys_footer import KeysFooter

        stand_in = self.query_one(FooterSnapshot)
        footer = self._footer = KeysFooter(
            compact=stand_in.compact,
            show_command_palette=not stand_in.compact,
            drop_order=self.FOOTER_DROP_ORDER,
        )
        await self.mount(footer, before=stand_in)
        await stand_in.remove()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        narrow = width < NARROW
        self.set_class(narrow, "-narrow")
        self._watch_resources()
        footer = self._footer
        if footer is not None:  # none yet in the first frame
            footer.compact = narrow
            footer.show_command_palette = not narrow  # still ctrl+p, and listed by ?
        for stand_in in self.query(FooterSnapshot):
            stand_in.compact = narrow
            stand_in.refresh()
        if self._snapshot is not None:
            self._snapshot.refresh()
        tiny = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(tiny, "-tiny")
        if tiny:
            notice = next(iter(self.query("#too-small").results(Static)), None)
            if notice is None:  # made when first needed: one widget less in the first frame
                notice = Static(id="too-small")
                self.mount(notice)
            notice.update(
                f"Terminal too small ({width}x{height}).\n"
                f"stack-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}: enlarge the window.\n"
                "q quits."
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only mode removes the mutating actions: no key, no footer entry, no command."""
        return not (self.read_only and action in self.MUTATING)

    # --- focus ------------------------------------------------------------------------------

    def pane(self, name: str) -> EnvPane:
        """The pane, mounted or not yet (the first frame's snapshot draws it meanwhile)."""
        return self._panes[name]

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        for node in event.widget.ancestors_with_self:
            if isinstance(node, EnvPane) and node.env.name != self.current:
                self._set_current(node.env.name, focus=False)
                break

    def _set_current(self, name: str, focus: bool = True) -> None:
        self.current = name
        for env_name, pane in self._panes.items():
            pane.set_class(env_name == name, "-current", update=pane.is_mounted)
        if self._snapshot is not None:  # narrow: it shows the current pane
            self._snapshot.refresh()
        if focus:
            self.call_after_refresh(self._focus_current)
        self._show_bar()
        self._watch_resources()

    def _focus_current(self) -> None:
        pane = self.pane(self.current)

        def focus() -> None:
            table = pane.services
            # Hidden (no services to show): only when nothing has the focus, as Textual's
            # auto-focus gave it to the table when it was mounted with the screen.
            if pane.env.name == self.current and (table.display or self.focused is None):
                table.focus()

        pane.when_mounted(focus)  # the first frame's snapshot has nothing to focus

    def action_switch_pane(self) -> None:
        self._set_current("prod" if self.current == "dev" else "dev")

    def action_focus_env(self, name: str) -> None:
        self._set_current(name)

    # --- the session's changes ----------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.aspect is Aspect.RESOURCES:
            self._show_resources()
        elif change.aspect is Aspect.PROBLEM:
            self.notify(change.message, severity="error")
        elif change.aspect is Aspect.CHECKS:
            self._show_all()  # the panes show the checks' word on restores
        elif change.aspect is Aspect.STATUS:
            if change.env is None:
                self._show_all()
            else:
                self._show_env(change.env)
            self._show_resources()
        elif change.run is not None:
            self._on_run_change(change)

    def _on_run_change(self, change: Change) -> None:
        from stack_tui.ops.events import Result, StepStarted
        from stack_tui.tui.screens.operation import OperationScreen

        run, event = change.run, change.event
        assert run is not None
        if event is None or isinstance(event, StepStarted | Result):
            self._show_env(run.env)
        if isinstance(event, Result) and run.ours:
            watching = isinstance(self.app.screen, OperationScreen) and self.app.screen.run is run
            if not watching:
                self.notify(
                    event.summary,
                    title=f"{label(run.env)} {run.operation}",
                    severity="information" if event.ok else "error",
                    timeout=8,
                )

    # --- rendering --------------------------------------------------------------------------

    def _show_all(self) -> None:
        for env in self.envs:
            self._show_env(env)

    def _show_env(self, env: str) -> None:
        now = self.backend.now()
        session = self.session
        self.pane(env).show(
            session.statuses.get(env),
            now,
            session.engine_down_for(env),
            activity(session.last_run(env), session.other_holder(env), now, session.died(env)),
            restores_text(session.checks, self.envs[env]),
        )
        self._show_bar()
        self._schedule_age_redraw(now)
        self._follow_snapshot()

    def _follow_snapshot(self) -> None:
        """Redraw the first frame's snapshot, or put the real panes in its place if it cannot
        draw what they show."""
        if self._snapshot is None:
            return
        if all(pane.content.drawable for pane in self._panes.values()):
            self._snapshot.refresh()
        else:
            self._swap_panes_now()

    def _schedule_age_redraw(self, now: float) -> None:
        """Redraw when a shown time would read differently (a backup's age turning "3h", an
        up-since time crossing midnight, a busy holder's minutes): one one-shot timer at that
        moment, not a ticker; nothing shown that can change, no timer at all."""
        statuses = self.session.statuses
        started = [
            row.started
            for status in statuses.values()
            for row in status.services
            if row.started is not None and row.state == "running"
        ]
        taken = [info.taken.timestamp() for status in statuses.values() for info in status.backups]
        taken += [s.offsite.at for s in statuses.values() if s.offsite and s.offsite.at]
        waits = [
            next_change(now - status.holder.started)
            for status in statuses.values()
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
        session = self.session
        # Each env's own engine: one that is gone leaves the other env's summary as it is.
        down = {
            name: session.engine_down_for(name) is not None
            or (status is not None and status.engine_unreachable)
            for name in self.envs
            for status in (session.statuses.get(name),)
        }
        checks = session.checks
        failing = None if checks is None else sum(not row.ok for row in checks.rows)
        parts = [
            env_summary(
                name,
                session.statuses.get(name),
                down[name],
                session.busy_with(name),
                died.operation if (died := session.died(name)) else "",
            )
            for name in self.envs
        ]
        parts[["dev", "prod"].index(self.current)].stylize("underline")
        parts += [
            engine_part(down),
            checks_part(failing, session.checks_running, session.checks_error),
        ]
        self.query_one(StatusBar).show(parts)

    # --- resource use -----------------------------------------------------------------------

    def on_screen_suspend(self) -> None:
        self._set_covered(True)

    def on_screen_resume(self) -> None:
        self._set_covered(False)

    def _set_covered(self, covered: bool) -> None:
        self._covered = covered
        self._watch_resources()
        self._show_resources()  # back on screen: fresh samplers, no figures from before

    def _watch_resources(self) -> None:
        """Streams for the panes on screen, only while resource use is on and nothing covers
        them (the narrow layout shows one pane)."""
        if not self.resources_on or self._covered:
            shown: set[str] = set()
        elif self.has_class("-narrow"):
            shown = {self.current}
        else:
            shown = set(self.envs)
        self.session.want_resources("main", shown)

    def _show_resources(self) -> None:
        session = self.session
        for name in self.envs:
            sampler = session.samplers.get(name)
            self.pane(name).show_resources(
                resources_text(
                    session.statuses.get(name),
                    sampler.histories if sampler else {},
                    session.resource_problems.get(name, ""),
                )
                if self.resources_on
                else None
            )
        self._follow_snapshot()

    def action_resources(self) -> None:
        self.resources_on = not self.resources_on
        self._watch_resources()
        self._show_resources()

    def action_resource_history(self) -> None:
        from stack_tui.tui.screens.resources import ResourceScreen

        self.app.push_screen(ResourceScreen(self.session, self.env))

    # --- actions ----------------------------------------------------------------------------

    @property
    def env(self) -> Environment:
        return self.envs[self.current]

    def action_refresh(self) -> None:
        self.session.refresh_all()
        self.session.run_checks()  # .env edits change what the checks say
        self.notify("Re-reading both environments and running the checks again.", timeout=2)

    def action_deploy(self) -> None:
        from stack_tui.tui import plans  # the questions' wording: not on the first frame's path

        env = self.env
        plan = plans.deploy(env, self.session.statuses.get(env.name))
        self._confirm_then(env, "deploy", plan, partial(self.backend.deploy, env))

    def action_backup(self) -> None:
        env = self.env
        try:
            keep = backups.keep_setting()
        except StackError as err:
            self.notify(f"{err.message} {err.hint}", title="Refused", severity="error")
            return
        from stack_tui.tui import plans

        plan = plans.backup(env, self.session.statuses.get(env.name), keep)
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

        status, other_status = self.session.statuses.get(env.name), self.session.statuses.get(other)
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

    def action_undo_restore(self) -> None:
        """The operation asks its own question (what it swaps, typed name) before anything."""
        env = self.env
        if not self._refuse_if_busy(env):
            self._launch(env, "undo-restore", partial(self.backend.undo_restore, env))

    def action_logs(self) -> None:
        from stack_tui.tui.screens.logs import LogsScreen

        service = self.pane(self.current).services.cursor_key
        if service is None:
            self.notify(
                f"{label(self.current)} has no service to show logs of.", severity="warning"
            )
            return
        self.app.push_screen(LogsScreen(self.backend, self.env, [service]))

    def action_all_logs(self) -> None:
        from stack_tui.tui.screens.logs import LogsScreen

        services = [str(key) for key in self.pane(self.current).services.keys]
        if not services:
            self.notify(
                f"{label(self.current)} has no service to show logs of.", severity="warning"
            )
            return
        self.app.push_screen(LogsScreen(self.backend, self.env, services))

    def action_shell(self) -> None:
        from stack_tui.tui.attach import attach

        service = self.pane(self.current).services.cursor_key
        if service is None:
            self.notify(f"{label(self.current)} has no service to open a shell in.")
            return
        where = f"a shell in {service} ({label(self.env)})"
        attach(self.app, self.backend, partial(self.backend.shell, self.env, service), where)

    def action_psql(self) -> None:
        from stack_tui.tui.attach import attach

        env, read_only = self.env, self.read_only
        where = f"psql on {env.db_name} ({label(env)}" + (", read-only)" if read_only else ")")
        attach(self.app, self.backend, partial(self.backend.psql, env, read_only=read_only), where)

    def action_operation(self) -> None:
        from stack_tui.tui.screens.operation import OperationScreen

        env = self.env
        run = self.session.follow(env) or self.session.runs.get(env.name)
        if run is None:
            self.notify(f"No operation has run on {label(env)} since stack-tui started.")
        else:
            self.app.push_screen(OperationScreen(run))

    def action_history(self) -> None:
        from stack_tui.tui.screens.history import HistoryScreen, RollbackChoice

        env = self.env

        def picked(choice: RollbackChoice | None) -> None:
            if choice is None or self._refuse_if_busy(env):
                return
            self._launch(
                env,
                "rollback",
                partial(self.backend.rollback, env, to=choice.record, with_data=choice.with_data),
            )

        self.app.push_screen(HistoryScreen(env, self.backend.history(env), self.read_only), picked)

    def action_check(self) -> None:
        from stack_tui.tui.screens.check import CheckScreen

        self.app.push_screen(CheckScreen(self.session))

    # --- operations ---------------------------------------------------------------------

    def _refuse_if_busy(self, env: Environment) -> bool:
        """Refuse at once, naming who holds the environment (us or another process)."""
        run = self.session.runs.get(env.name)
        if run is not None and run.running:
            who = f"{run.operation} started by you at {clock(run.started)}"
        else:
            holder = self.backend.holder(env)
            if holder is None:
                return False
            who = describe_holder(holder, self.backend.now())
        self.notify(
            f"{label(env)} is busy: {who}. Wait for it to finish (o shows it).",
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

        run = self.session.launch(env, operation, start)
        self.app.push_screen(OperationScreen(run))
