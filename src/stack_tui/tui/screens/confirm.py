"""The one confirmation dialog: what will happen, Cancel by default, Esc cancels.

When a name must be typed, the confirm button stays disabled until the input
holds exactly that text; Enter in the input confirms only then. The input does
not blink (a blinking cursor is a redraw every half second over SSH).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Static

from stack_tui.tui.plans import Plan


def detail_text(line: str) -> Text:
    """Warnings (the spec's WARNING text, DATA LOSS) stand out in any colour mode."""
    loud = line.startswith("WARNING") or "DATA LOSS" in line or "EMPTY" in line
    return Text(line, style="bold red" if loud else "")


#: Below this height the dialog takes the whole screen, its details scroll and its buttons are
#: compact, so the buttons and the footer always show (80x24 included).
SHORT = 34


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, plan: Plan) -> None:
        super().__init__(classes="-prod" if plan.env == "prod" else "")
        self.plan = plan

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical(id="dialog"):
            yield Static(plan.title, id="title")
            yield Static(plan.question, id="question")
            with VerticalScroll(id="details"):
                for line in plan.details:
                    yield Static(detail_text(line), classes="detail")
            if plan.require_typing:
                yield Static(
                    Text.assemble("Type ", (plan.require_typing, "bold reverse"), " to confirm:"),
                    id="typing-label",
                )
                typed = Input(id="typed")
                typed.cursor_blink = False
                yield typed
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(
                    plan.confirm_label,
                    id="confirm",
                    variant="error",
                    disabled=bool(plan.require_typing),
                )
        yield Footer()

    def on_mount(self) -> None:
        self._fit(self.app.size.height)
        target = "#typed" if self.plan.require_typing else "#cancel"
        self.query_one(target).focus()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.height)

    def _fit(self, height: int) -> None:
        short = height < SHORT
        self.set_class(short, "-short")
        for button in self.query(Button):
            button.compact = short

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value != self.plan.require_typing

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value == self.plan.require_typing:
            self.dismiss(True)
        else:
            self.notify(
                f"Type exactly {self.plan.require_typing!r} to confirm, or Esc to cancel.",
                severity="warning",
            )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)
