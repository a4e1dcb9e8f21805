"""One environment at a glance: services, volumes, backups (and their off-host copies), and
what is running on it.

Prod is unmistakable without colour too: a heavy border, a reversed PROD banner,
and its label in capitals everywhere. Problems are words, not only colours
(MISSING, UNHEALTHY, EXITED), so they survive NO_COLOR and 16-colour terminals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from stack_tui.core.environments import Environment
from stack_tui.core.locks import Holder
from stack_tui.core.stats import History, describe
from stack_tui.live.runs import DiedRecord, Run, clock, describe_holder
from stack_tui.ops.status import EnvStatus
from stack_tui.tui.plans import label
from stack_tui.tui.widgets.tables import BackupsTable, ServicesTable, coarse_age

if TYPE_CHECKING:  # the checks and off-host state arrive after the first paint
    from stack_tui.core.parity import CheckReport
    from stack_tui.ops.offsite import PaneState


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
    """Everything shown about one environment; `show()` touches only what changed."""

    can_focus = False

    def __init__(self, env: Environment) -> None:
        super().__init__(id=f"pane-{env.name}", classes="-prod" if env.is_prod else "-dev")
        self.env = env
        self.border_title = f"{'2' if env.is_prod else '1'} {label(env)}"
        self._shown: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="banner", classes="banner")
        yield Static(id="problem", classes="problem")
        yield Static("Services", id="services-title", classes="section")
        yield ServicesTable(id="services")
        yield Static(id="resources", classes="resources")
        yield Static("Volumes", classes="section")
        yield Static(id="volumes")
        yield Static(id="restores")
        yield Static("Backups", id="backups-title", classes="section")
        yield Static(id="stale")
        yield Static(id="offsite")
        backups = BackupsTable(id="backups")
        backups.can_focus = False
        backups.show_cursor = False
        yield backups
        yield Static("Operation", classes="section")
        yield Static(id="operation")

    @property
    def services(self) -> ServicesTable:
        return self.query_one("#services", ServicesTable)

    def _set(self, widget_id: str, content: Text | str) -> None:
        key = content.markup if isinstance(content, Text) else content
        if self._shown.get(widget_id) != key:
            self._shown[widget_id] = key
            self.query_one(f"#{widget_id}", Static).update(content)

    def show(
        self,
        status: EnvStatus | None,
        now: float,
        engine_down: tuple[str, str] | None,
        activity: Text,
        restores: Text | None = None,
    ) -> None:
        self._set("banner", self._banner(status))
        problem = engine_down or ((status.error, status.hint) if status and status.error else None)
        self.set_class(problem is not None, "-problem")
        if problem is None:
            self._set("problem", "")
        else:
            self._set(
                "problem", Text.assemble(("✗ ", "bold"), (problem[0], "bold"), "\n", problem[1])
            )
        services = status.services if status else ()
        self.query_one("#services", ServicesTable).show(services, now)
        self.query_one("#services", ServicesTable).display = bool(services)
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
        self._set("services-title", title)
        self.set_class(bool(problem and services), "-stale")
        self._set("volumes", self._volumes(status, problem is not None))
        self._set("restores", restores or "")
        self.query_one("#restores", Static).display = bool(restores)
        backups = status.backups if status else ()
        table = self.query_one("#backups", BackupsTable)
        table.show(backups, now)
        table.display = bool(backups)
        self._set(
            "backups-title",
            f"Backups ({len(backups)}, newest first)"
            if backups
            else "Backups: none yet (b takes one)",
        )
        stale = Text()
        for alarm in status.stale if status else ():
            stale.append("\n" if stale else "")
            stale.append(" STALE ", style="bold reverse red")
            stale.append(f" {alarm.message()}", style="bold red")
        self._set("stale", stale)
        self.query_one("#stale", Static).display = bool(stale)
        copies = offsite_text(status.offsite if status else None, self.env, now)
        self._set("offsite", copies or "")
        self.query_one("#offsite", Static).display = bool(copies)
        self._set("operation", activity)

    def show_resources(self, text: Text | None) -> None:
        """Resource use under the services (None: off, hidden)."""
        self._set("resources", text or "")
        self.query_one("#resources", Static).display = text is not None

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
