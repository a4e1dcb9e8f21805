"""One environment at a glance: services, volumes, backups (and their off-host copies), and
what is running on it.

Prod is unmistakable without colour too: a heavy border, a reversed PROD banner,
and its label in capitals everywhere. Problems are words, not only colours
(MISSING, UNHEALTHY, EXITED), so they survive NO_COLOR and 16-colour terminals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from stack_tui.core.environments import Environment, label
from stack_tui.core.locks import Holder
from stack_tui.live.runs import DiedRecord, Run, clock, describe_holder
from stack_tui.ops.status import EnvStatus
from stack_tui.tui.widgets.cells import (
    BACKUP_COLUMNS,
    SERVICE_COLUMNS,
    backup_rows,
    coarse_age,
    service_rows,
)
from stack_tui.tui.widgets.pane_snapshot import PaneContent, Table

if TYPE_CHECKING:  # the checks, off-host state and resource use arrive after the first
    # paint; the tables' widgets (DataTable) right after it
    from stack_tui.core.parity import CheckReport
    from stack_tui.core.stats import History
    from stack_tui.ops.offsite import PaneState
    from stack_tui.tui.widgets.tables import BackupsTable, ServicesTable

PartT = TypeVar("PartT", bound=Widget)


def activity(
    run: Run | None, other: Holder | None, now: float, died: DiedRecord | None = None
) -> Text:
    """The pane's operation line: ours waiting or running, another process's, one that died
    (until the next operation), the last one seen (ours or followed), or none."""
    if run is not None and run.waiting is not None:
        return Text.assemble(
            ("? ", "bold magenta"),
            (f"{run.operation} waiting for your answer", "bold magenta"),
            f" (you, since {clock(run.started)})",
        )
    if other is not None:  # another process runs it now (also one we follow)
        return Text.assemble(
            ("⟳ ", "bold yellow"),
            (describe_holder(other, now), "bold yellow"),
            ("  o: follow live", "dim"),
        )
    if run is not None and run.running and run.ours:
        from stack_tui.ops.events import StepStarted

        step = next((e.step for e in reversed(run.events) if isinstance(e, StepStarted)), "")
        where = f"; {step}" if step else ""
        return Text.assemble(
            ("⟳ ", "bold yellow"),
            (f"{run.operation} running", "bold yellow"),
            f" (you, since {clock(run.started)}{where})",
            ("  o: watch", "dim"),
        )
    if died is not None:
        during = f" during '{died.last_step}'" if died.last_step else ""
        return Text.assemble(
            ("✗ ", "bold red"),
            (f"{died.operation} DIED", "bold reverse red"),
            f" (pid {died.pid}, started {clock(died.started)}){during}: its process was "
            "killed before it finished",
            ("  o: its log", "dim"),
        )
    if run is not None and run.result is not None:
        ok = run.result.ok
        by = "" if run.ours else f" by {run.owner}"
        return Text.assemble(
            ("✓ " if ok else "✗ ", "green" if ok else "bold red"),
            f"{run.operation}{by} at {clock(run.result.at)}: {run.result.summary}",
            ("  o: output", "dim"),
        )
    return Text("No operation running.", style="dim")


class EnvPane(VerticalScroll):
    """Everything shown about one environment; `show()` touches only what changed.

    The first frame draws both panes as one PanesSnapshot (from each pane's `content`);
    right after it, the main screen mounts the panes with their real widgets (the services
    table takes the focus and the cursor), showing the same.
    """

    can_focus = False

    def __init__(self, env: Environment) -> None:
        super().__init__(id=f"pane-{env.name}", classes="-prod" if env.is_prod else "-dev")
        self.env = env
        self.border_title = f"{'2' if env.is_prod else '1'} {label(env)}"
        self._shown: dict[str, str] = {}
        self.content = self._compute(None, 0.0, None, activity(None, None, 0.0))
        self._parts: dict[str, Widget] = {}
        #: Called once the real widgets are mounted (MainScreen focuses the table then).
        self._on_mounted: list[Callable[[], None]] = []

    def compose(self) -> ComposeResult:
        self._build()
        yield from self._parts.values()

    def on_mount(self) -> None:
        for callback in self._on_mounted:
            callback()
        self._on_mounted.clear()

    @property
    def services(self) -> ServicesTable:
        """The services table (built and filled on first use if the first frame's snapshot
        still shows: a key pressed before the swap acts on the real table)."""
        from stack_tui.tui.widgets.tables import ServicesTable

        return self.part("services", ServicesTable)

    def part(self, widget_id: str, kind: type[PartT]) -> PartT:
        """One of the real widgets by id, built and filled if the snapshot still shows (what
        it says is current either way: a reader need not wait for the swap)."""
        self._build()
        found = self._parts[widget_id]
        assert isinstance(found, kind), found
        return found

    def when_mounted(self, callback: Callable[[], None]) -> None:
        """Now if the pane is on screen, else once it is (after the first frame's snapshot)."""
        if self.is_mounted:
            callback()
        else:
            self._on_mounted.append(callback)

    def _build(self) -> None:
        """The real widgets, filled with what the pane shows (not yet mounted)."""
        if self._parts:
            return
        from stack_tui.tui.widgets.tables import BackupsTable, ServicesTable

        backups = BackupsTable(id="backups")
        backups.can_focus = False
        backups.show_cursor = False
        parts: list[Widget] = [
            Static(id="banner", classes="banner"),
            Static(id="problem", classes="problem"),
            Static("Services", id="services-title", classes="section"),
            ServicesTable(id="services"),
            Static(id="resources", classes="resources"),
            Static("Volumes", classes="section"),
            Static(id="volumes"),
            Static(id="restores"),
            Static("Backups", id="backups-title", classes="section"),
            Static(id="stale"),
            Static(id="offsite"),
            backups,
            Static("Operation", classes="section"),
            Static(id="operation"),
        ]
        self._parts = {part.id or f"section-{index}": part for index, part in enumerate(parts)}
        self._fill(self.content)

    def show(
        self,
        status: EnvStatus | None,
        now: float,
        engine_down: tuple[str, str] | None,
        activity: Text,
        restores: Text | None = None,
    ) -> None:
        self._show(
            self._compute(status, now, engine_down, activity, restores, self.content.resources)
        )

    def show_resources(self, text: Text | None) -> None:
        """Resource use under the services (None: off, hidden)."""
        self._show(replace(self.content, resources=text))

    def _show(self, content: PaneContent) -> None:
        """Into the real widgets if built; the main screen redraws the snapshot meanwhile."""
        self.content = content
        self.set_class(content.problem is not None, "-problem", update=self.is_mounted)
        self.set_class(content.stale_services, "-stale", update=self.is_mounted)
        if self._parts:
            self._fill(content)

    def _compute(
        self,
        status: EnvStatus | None,
        now: float,
        engine_down: tuple[str, str] | None,
        activity: Text,
        restores: Text | None = None,
        resources: Text | None = None,
    ) -> PaneContent:
        problem = engine_down or ((status.error, status.hint) if status and status.error else None)
        services = status.services if status else ()
        if status is None:
            title = "Services: reading…"
        elif engine_down and services:
            title = "Services (last known: the engine does not answer)"
        elif problem and services:
            healthy = sum(row.ok for row in services)
            title = f"Services ({healthy}/{len(services)} ok, as the engine shows them)"
        elif problem:
            title = "Services: unknown"
        else:
            title = f"Services ({sum(row.ok for row in services)}/{len(services)} ok)"
        backups = status.backups if status else ()
        stale = Text()
        for alarm in status.stale if status else ():
            stale.append("\n" if stale else "")
            stale.append(" STALE ", style="bold reverse red")
            stale.append(f" {alarm.message()}", style="bold red")
        return PaneContent(
            banner=self._banner(status),
            problem=None
            if problem is None
            else Text.assemble(("✗ ", "bold"), (problem[0], "bold"), "\n", problem[1]),
            services_title=title,
            services=Table(SERVICE_COLUMNS, service_rows(services, now), cursor=True),
            stale_services=bool(problem and services),
            volumes=self._volumes(status, problem is not None),
            restores=restores,
            backups_title=f"Backups ({len(backups)}, newest first)"
            if backups
            else "Backups: none yet (b takes one)",
            stale=stale or None,
            offsite=offsite_text(status.offsite if status else None, self.env, now),
            backups=Table(BACKUP_COLUMNS, backup_rows(backups, now)),
            operation=activity,
            resources=resources,
        )

    def _set(self, widget_id: str, content: Text | str) -> None:
        key = content.markup if isinstance(content, Text) else content
        if self._shown.get(widget_id) != key:
            self._shown[widget_id] = key
            cast(Static, self._parts[widget_id]).update(content)

    def _fill(self, content: PaneContent) -> None:
        """Show `content` in the real widgets (mounted or not yet)."""
        parts = self._parts
        self._set("banner", content.banner)
        self._set("problem", content.problem or "")
        services = cast("ServicesTable", parts["services"])
        services.sync(content.services.rows)
        services.display = bool(content.services.rows)
        self._set("services-title", content.services_title)
        self._set("resources", content.resources or "")
        parts["resources"].display = content.resources is not None
        self._set("volumes", content.volumes)
        self._set("restores", content.restores or "")
        parts["restores"].display = bool(content.restores)
        backups = cast("BackupsTable", parts["backups"])
        backups.sync(content.backups.rows)
        backups.display = bool(content.backups.rows)
        self._set("backups-title", content.backups_title)
        self._set("stale", content.stale or "")
        parts["stale"].display = bool(content.stale)
        self._set("offsite", content.offsite or "")
        parts["offsite"].display = bool(content.offsite)
        self._set("operation", content.operation)

    def _banner(self, status: EnvStatus | None) -> Text:
        domain = status.domain if status and status.domain else "no domain set"
        tag = " PROD " if self.env.is_prod else " dev "
        banner = Text.assemble((tag, "bold reverse"), f"  {self.env.project}  ·  ")
        if status is not None and status.engine_host != "local":  # on another host: which,
            # before the domain so that a narrow pane still shows it
            trip = "" if status.round_trip is None else f" ({status.round_trip * 1000:.0f} ms)"
            banner.append(f"on {status.engine_host}{trip}", style="bold")
            banner.append("  ·  ")
        banner.append(domain)
        return banner

    def _volumes(self, status: EnvStatus | None, problem: bool) -> Text:
        if status is None or (problem and not status.volumes):
            return Text("unknown", style="dim")
        lines = Text()
        for index, volume in enumerate(status.volumes):
            if index:
                lines.append("\n")
            if not volume.present:
                lines.append(" MISSING ", style="bold reverse red")
                lines.append(f" {volume.name}", style="bold red")
                lines.append("\n  a deploy would create it EMPTY", style="bold red")
            elif volume.foreign:
                lines.append("! ", style="bold yellow")
                lines.append(
                    f"{volume.name} is labelled as project {volume.project_label}",
                    style="bold yellow",
                )
            else:
                lines.append("✓ ", style="green")
                lines.append(volume.name)
        return lines


def resources_text(
    status: EnvStatus | None, histories: Mapping[str, History], problem: str
) -> Text:
    """CPU and memory per service, the newest sample ("…" until the first arrives)."""
    from stack_tui.core.stats import describe

    text = Text.assemble(("Resource use ", "bold"), ("(t: off, T: last minute)", "dim"))
    if problem:
        text.append(f"\n✗ {problem}", style="bold red")
    services = status.services if status else ()
    width = max((len(row.service) for row in services), default=0)
    for row in services:
        history = histories.get(row.service)
        if row.state != "running":
            cpu, memory = "-", "-"
        else:
            cpu, memory = describe(history.last if history else None)
        text.append(f"\n{row.service:<{width}}  cpu {cpu:>7}  mem {memory:>10}")
    return text


def restores_text(report: CheckReport | None, env: Environment) -> Text | None:
    """What restores left in `env`'s cluster, from the checks' "Restores" row: the kept copy
    (and that `u` swaps it back), or what an interrupted restore left and the fix."""
    row = next((r for r in report.rows if r.name == "Restores"), None) if report else None
    if row is None:
        return None
    kept = row.dev if env.name == "dev" else row.prod
    text = Text()
    if kept.startswith(env.db_name):
        text.append(f"kept by a restore: {kept}", style="cyan")
        text.append("  u: swap it back", style="dim")
    for problem in row.detail.split("; ") if row.detail else ():
        if problem.startswith(f"{env.name}: "):
            text.append("\n" if text else "")
            text.append(" INTERRUPTED RESTORE ", style="bold reverse red")
            text.append(f" {problem.removeprefix(env.name + ': ')}", style="bold red")
    return text or None


def offsite_text(state: PaneState | None, env: Environment, now: float) -> Text | None:
    """The last off-host copy: its age and what it did, or loudly that it failed (and the
    command that retries it). None when off-host copies are off."""
    if state is None:
        return None
    age = f" {coarse_age(now - state.at)} ago" if state.at is not None else ""
    if state.ok:
        copied = f"copied{age} " if age else ""
        return Text.assemble(("✓ ", "green"), f"off-host: {copied}{state.text}")
    retry = "./stack offsite push" + ("" if env.is_prod else " --dev")
    badge = " OFF-HOST COPY FAILED " if state.at is not None else " NO OFF-HOST COPY "
    return Text.assemble(
        (badge, "bold reverse red"),
        (f"{age + ':' if age else ''} {state.text}", "bold red"),
        (f"\n  the local backups stand; retry: {retry}", "red"),
    )
