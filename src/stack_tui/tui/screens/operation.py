"""A deploy, backup or restore as it happens: per-service status, steps, raw output, result.

The screen only renders a Run; the operation itself runs in the main screen's
worker, so leaving this screen (Esc) never stops it, and coming back (o) shows
everything from the start. After the end the output stays readable, with the
Result and, on failure, the failing service's last log lines.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from stack_tui.ops.events import (
    ConfirmationNeeded,
    Event,
    OutputLine,
    Result,
    ServiceProgress,
    StepFinished,
    StepStarted,
    Warning,
)
from stack_tui.tui.plans import label
from stack_tui.tui.runs import Run
from stack_tui.tui.widgets.env_pane import clock
from stack_tui.tui.widgets.tables import Cell, SyncTable

GOOD_STATES = ("healthy", "started", "running", "created", "recreated")
BAD_STATES = ("error", "unhealthy", "exited", "failed", "dead")


def progress_cell(state: str) -> Cell:
    lowered = state.lower()
    if any(word in lowered for word in BAD_STATES):
        return (state, "bold red")
    if any(word in lowered for word in GOOD_STATES):
        return (state, "green")
    return (state, "yellow")


def cancelled(result: Result) -> bool:
    """An operator's "no" is not a failure (restore marks it in data, deploy in words)."""
    return bool(result.data.get("cancelled")) or " cancelled" in result.summary.lower()


class ProgressTable(SyncTable, can_focus=False):
    COLUMNS = (("service", "service"), ("state", "state"))

    def on_mount(self) -> None:
        self.show_cursor = False


def log_lines(event: Event) -> list[str]:
    """How an event reads in the raw output log."""
    if isinstance(event, StepStarted):
        return [f"▶ {event.step}" + (f": {event.detail}" if event.detail else "")]
    if isinstance(event, StepFinished):
        mark = "✓" if event.ok else "✗"
        return [f"{mark} {event.step}" + (f": {event.detail}" if event.detail else "")]
    if isinstance(event, OutputLine):
        return [f"  {event.line}"]
    if isinstance(event, ServiceProgress):
        return [f"  {event.service}: {event.state}"]
    if isinstance(event, Warning):
        return [f"! {line}" for line in event.message.splitlines()]
    if isinstance(event, ConfirmationNeeded):
        answer = {True: "confirmed", False: "cancelled", None: "asked in the other process"}
        return [f"? {event.question} -> {answer[event.response]}"]
    if isinstance(event, Result):
        return [("✓ " if event.ok else "✗ ") + event.summary, *(f"  {d}" for d in event.details)]
    return []


class OperationScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to both panes")]

    def __init__(self, run: Run) -> None:
        super().__init__(classes="-prod" if run.env == "prod" else "")
        self.run = run
        self._shown = 0
        self._steps: dict[str, Cell] = {}
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Static(id="op-title")
        with Horizontal(id="op-body"):
            with Vertical(id="op-side"):
                yield Static("Services", id="op-services-title", classes="section")
                yield ProgressTable(id="op-services")
                yield Static("Steps", classes="section")
                yield Static(id="op-steps")
            yield Log(id="op-log", highlight=False)
        with VerticalScroll(id="op-result"):
            yield Static(id="op-summary")
        yield Footer()

    def on_mount(self) -> None:
        self._ready = True
        self.sync()
        self.query_one(Log).focus()

    def sync(self) -> None:
        """Render the run's events not shown yet (called on mount and on each new event)."""
        if not self._ready:
            return
        new = self.run.events[self._shown :]
        self._shown = len(self.run.events)
        lines = [line for event in new for line in log_lines(event)]
        if lines:
            self.query_one(Log).write_lines(lines)
        for event in new:
            if isinstance(event, StepStarted):
                self._steps[event.step] = ("▶", "yellow")
            elif isinstance(event, StepFinished):
                self._steps[event.step] = ("✓", "green") if event.ok else ("✗", "bold red")
        if any(isinstance(e, StepStarted | StepFinished) for e in new):
            steps = Text("\n").join(
                Text.assemble(mark, f" {step}") for step, mark in self._steps.items()
            )
            self.query_one("#op-steps", Static).update(steps)
        for widget_id in ("#op-services-title", "#op-services"):
            self.query_one(widget_id).display = bool(self.run.services)
        if any(isinstance(e, ServiceProgress) for e in new):
            self.query_one(ProgressTable).sync(
                [
                    (service, ((service, "bold"), progress_cell(state)))
                    for service, state in self.run.services.items()
                ]
            )
        self._show_header()

    def _show_header(self) -> None:
        run = self.run
        who = "you" if run.ours else run.owner
        if run.result is None:
            state = Text(" RUNNING ", style="bold reverse yellow")
        elif cancelled(run.result):
            state = Text(" CANCELLED ", style="bold reverse yellow")
        elif run.result.ok:
            state = Text(" DONE ", style="bold reverse green")
        else:
            state = Text(" FAILED ", style="bold reverse red")
        self.query_one("#op-title", Static).update(
            Text.assemble(
                (f" {label(run.env)} ", "bold reverse"),
                f"  {run.operation}  ",
                state,
                f"  started {clock(run.started)} by {who}",
            )
        )
        result = self.query_one("#op-result")
        if run.result is not None and not result.display:
            # The result panel takes room from the log: keep the log's end in view.
            self.call_after_refresh(self.query_one(Log).scroll_end, animate=False)
        result.display = run.result is not None
        if run.result is not None:
            colour = "green" if run.result.ok else "red"
            self.query_one("#op-summary", Static).update(
                Text.assemble(
                    (run.result.summary, f"bold {colour}"),
                    *(f"\n{line}" for line in run.result.details),
                )
            )
