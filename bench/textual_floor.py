"""The smallest Textual app there is: one Static. bench/tui_bench.py times its first paint
side by side with the TUI's launch, in the same interpreter and Textual: the floor that a
Textual app's launch cannot go below."""

from textual.app import App, ComposeResult
from textual.widgets import Static

READY = "textual floor: first paint"


class Floor(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(READY)


if __name__ == "__main__":
    Floor().run()
