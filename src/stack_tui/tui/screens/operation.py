"""A deploy, backup or restore as it happens: per-service status, steps, raw output, result.

The screen only renders a Run and follows the session's changes to it; the operation
itself runs in the session's worker, so leaving this screen (Esc) never stops it, and
coming back (o) shows everything from the start. After the end the output stays readable, with the
Result and, on failure, the failing service's last log lines.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from stack_tui.core.environments import label
from stack_tui.live.runs import Run, clock
from stack_tui.live.session import Change
from stack_tui.ops.events import (
    Caution,
    ConfirmationNeeded,
    Event,
    Outcome,
    OutputLine,
    Result,
    ServiceProgress,
    StepFinished,
    StepStarted,
    Waiting,
)
from stack_tui.tui.messages import session_changes
from stack_tui.tui.widgets.cells import Cell
from stack_tui.tui.widgets.tables import SyncTable

GOOD_STATES = ("healthy", "started", "running", "created", "recreated")
BAD_STATES = ("error", "unhealthy", "exited", "failed", "dead")


def progress_cell(state: str) -> Cell:
    lowered = state.lower()
    if any(word in lowered for word in BAD_STATES):
        return (state, "bold red")
    if any(word in lowered for word in GOOD_STATES):
        return (state, "green")
    return (state, "yellow")


#: The header's badge per outcome: a word (for monochrome terminals) and its colour.
BADGES = {
    Outcome.OK: (" DONE ", "bold reverse green"),
    Outcome.FAILED: (" FAILED ", "bold reverse red"),
    Outcome.REFUSED: (" REFUSED ", "bold reverse red"),
    Outcome.CANCELLED: (" CANCELLED ", "bold reverse yellow"),
    Outcome.INTERRUPTED: (" INTERRUPTED ", "bold reverse red"),
    Outcome.DIED: (" DIED ", "bold reverse red"),
    Outcome.SKIPPED: (" SKIPPED ", "bold reverse yellow"),
}


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
    if isinstance(event, Caution):
        return [f"! {line}" for line in event.message.splitlines()]
    if isinstance(event, ConfirmationNeeded):
        answer = {True: "confirmed", False: "cancelled", None: "asked in the other process"}
        return [f"? {event.question} -> {answer[event.response]}"]
    if isinstance(event, Result):
        return [("✓ " if event.ok else "✗ ") + event.summary, *(f"  {d}" for d in event.details)]
    return []


class OperationScreen(Screen[None]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
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
        yield Static(id="op-waiting")
        with VerticalScroll(id="op-result"):
            yield Static(id="op-summary")
        yield Footer()

    def on_mount(self) -> None:
        self._ready = True
        self.sync()
        self.query_one(Log).focus()
        session_changes(self).subscribe(self, self._on_change, immediate=True)

    def _on_change(self, change: Change) -> None:
        if change.run is self.run:
            self.sync()

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
        if new:
            self._show_wait(new[-1])
        if any(isinstance(e, ServiceProgress) for e in new):
            self.query_one(ProgressTable).sync(
                [
                    (service, ((service, "bold"), progress_cell(state)))
                    for service, state in self.run.services.items()
                ]
            )
        self._show_header()

    def _show_wait(self, last: Event) -> None:
        """Who blocks us, rewritten each second while we wait; gone with the next event."""
        line = self.query_one("#op-waiting", Static)
        line.display = isinstance(last, Waiting)
        if isinstance(last, Waiting):
            line.update(
                Text.assemble(
                    (
                        f" waiting {last.seconds:.0f} s of {last.bound:.0f} s ",
                        "bold reverse yellow",
                    ),
                    f" {last.what} is blocked by ",
                    "; ".join(last.blockers),
                )
            )

    def _show_header(self) -> None:
        run = self.run
        who = "you" if run.ours else run.owner
        if run.result is not None:
            state = Text(*BADGES[run.result.outcome])
        elif run.waiting is not None:
            state = Text(" WAITING FOR YOUR ANSWER ", style="bold reverse magenta")
        else:
            state = Text(" RUNNING ", style="bold reverse yellow")
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
            colour = {Outcome.OK: "green", Outcome.CANCELLED: "yellow"}.get(
                run.result.outcome, "red"
            )
            self.query_one("#op-summary", Static).update(
                Text.assemble(
                    (run.result.summary, f"bold {colour}"),
                    *(f"\n{line}" for line in run.result.details),
                )
            )
