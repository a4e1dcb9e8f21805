"""The main screen's footer once the first frame is up (imported then, not at launch)."""

from __future__ import annotations

from textual.widgets import Footer


class KeysFooter(Footer):
    """Textual's footer with its keys when it is mounted. Footer composes them once the
    screen announces its bindings, at the next focus change; the main screen's own
    bindings are known already."""

    def __init__(self, *, compact: bool, show_command_palette: bool) -> None:
        super().__init__(compact=compact, show_command_palette=show_command_palette)
        self.set_reactive(Footer._bindings_ready, True)
