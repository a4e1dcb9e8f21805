"""`T`: one environment's CPU and memory per service over the last minute, as sparklines.

Streams run while this screen is shown (the session's `want_resources`), whether or not
resource use is on in the panes, and stop when it is left.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

from stack_tui.core.environments import Environment, label
from stack_tui.core.stats import HISTORY, History, describe, human_bytes
from stack_tui.live.session import Aspect, Change, Session
from stack_tui.tui.messages import session_changes

VIEWER = "history"


class ResourceScreen(Screen[None]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to both panes")]

    def __init__(self, session: Session, env: Environment) -> None:
        super().__init__(classes="-prod" if env.is_prod else "")
        self.session = session
        self.env = env
        status = session.statuses.get(env.name)
        self.services = [row.service for row in status.services] if status else []

    def compose(self) -> ComposeResult:
        yield Static(
            f" {label(self.env)}  resource use, last minute (one sample a second; Esc to leave)",
            id="resources-title",
        )
        yield Static(id="resources-problem")
        with Horizontal(id="resource-heads"):
            yield Static("service, now", classes="resource-now")
            yield Static("CPU", classes="resource-head")
            yield Static("memory", classes="resource-head")
        with VerticalScroll(id="resource-rows"):
            for index in range(len(self.services)):  # ids by position: any service name fits
                with Horizontal(classes="resource-row"):
                    yield Static(id=f"now-{index}", classes="resource-now")
                    yield Sparkline([], id=f"cpu-{index}")
                    yield Sparkline([], id=f"mem-{index}")
        yield Footer()

    def on_mount(self) -> None:
        session_changes(self).subscribe(self, self._on_change)
        self.session.want_resources(VIEWER, {self.env.name})
        self._show()

    def on_unmount(self) -> None:
        self.session.want_resources(VIEWER, set())

    def _on_change(self, change: Change) -> None:
        if change.aspect is Aspect.RESOURCES:
            self._show()

    def _show(self) -> None:
        sampler = self.session.samplers.get(self.env.name)
        histories = sampler.histories if sampler else {}
        problem = self.session.resource_problems.get(self.env.name, "")
        self.query_one("#resources-problem", Static).update(
            Text(f"✗ {problem}", style="bold red") if problem else ""
        )
        for index, service in enumerate(self.services):
            history = histories.get(service) or History()
            cpu, memory = describe(history.last)
            peak_cpu = max(history.cpu(), default=0.0)
            peak_memory = max(history.memory(), default=0.0)
            self.query_one(f"#now-{index}", Static).update(
                Text.assemble(
                    (f"{service}\n", "bold"),
                    f"cpu {cpu} (max {peak_cpu:.1f} %)\n",
                    f"mem {memory} (max {human_bytes(peak_memory)})",
                )
            )
            self.query_one(f"#cpu-{index}", Sparkline).data = minute(history.cpu())
            self.query_one(f"#mem-{index}", Sparkline).data = minute(history.memory())


def minute(values: list[float]) -> list[float]:
    """A full minute, the samples not yet taken as zero on the left: the time axis stays put
    while it fills (a few samples stretched over the width would read as a minute)."""
    return [0.0] * (HISTORY - len(values)) + values
