"""One line under the header: each environment in a word, the engine, the checks badge.

On a narrow terminal only one pane is shown; this line keeps the other one in
sight (and says which key shows it).
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from stack_tui.core.environments import label
from stack_tui.ops.status import EnvStatus


def env_summary(name: str, status: EnvStatus | None, down: bool, busy: str, died: str = "") -> Text:
    """`busy`: the operation running on it; `died`: the last one, killed (until the next)."""
    key = "2" if name == "prod" else "1"
    text = Text.assemble((f"{key} ", "dim"), (label(name), "bold"), " ")
    if down or (status is not None and status.error):
        text.append("✗ unknown", style="bold red")
    elif status is None:
        text.append("…", style="dim")
    elif status.missing_volumes:
        text.append("✗ VOLUME MISSING", style="bold red")
    else:  # counted as the pane's "Services (3/4 ok)" counts them
        ok, total = sum(row.ok for row in status.services), len(status.services)
        if ok < total:
            text.append(f"✗ {ok}/{total} ok", style="bold red")
        else:
            text.append(f"✓ {ok}/{total} ok", style="green")
    if status is not None and status.stale:
        text.append("  ")
        text.append(" STALE ", style="bold reverse red")
    if busy:
        text.append(f"  ⟳ {busy}", style="bold yellow")
    elif died:
        text.append(f"  ✗ {died} DIED", style="bold red")
    return text


class StatusBar(Static):
    """Rebuilt from the screen's state on every change; updates only if the text differs."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._markup = ""

    def show(self, parts: list[Text]) -> None:
        line = Text("   ").join(parts)
        if line.markup != self._markup:
            self._markup = line.markup
            self.update(line)


def engine_part(down: Mapping[str, bool]) -> Text:
    """`down`: per environment, whether its engine is gone. With each env on its own engine,
    the one gone is named: the other's engine is fine, and a narrow terminal shows one pane."""
    gone = [name for name, is_down in down.items() if is_down]
    if not gone:
        return Text.assemble(("engine ", "dim"), ("✓", "green"))
    which = f"{label(gone[0])} " if len(gone) < len(down) else ""
    return Text(f"{which}engine ✗ UNREACHABLE", style="bold red")


def checks_part(failing: int | None, running: bool, error: str) -> Text:
    if running:
        return Text("checks …", style="dim")
    if error:
        return Text("checks: n/a", style="dim")
    if failing is None:
        return Text("")
    if failing:
        return Text.assemble(
            (f" ✗ {failing} CHECK{'S' if failing > 1 else ''} FAILING ", "bold reverse red"),
            (" c", "dim"),
        )
    return Text.assemble(("checks ", "dim"), ("✓", "green"))
