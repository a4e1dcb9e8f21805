"""The main screen's footer once the first frame is up (imported then, not at launch)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # Footer's key widget (not re-exported)

from stack_tui.tui.widgets.footer_snapshot import shown_keys


class KeysFooter(Footer):
    """Textual's footer with its keys when it is mounted, and only those that fit (see
    `shown_keys`: quit and help stay in sight on an 80-column terminal). Footer composes its
    keys once the screen announces its bindings, at the next focus change; the main
    screen's own bindings are known already."""

    def __init__(
        self, *, compact: bool, show_command_palette: bool, drop_order: Sequence[str]
    ) -> None:
        super().__init__(compact=compact, show_command_palette=show_command_palette)
        self.set_reactive(Footer._bindings_ready, True)
        self.drop_order = drop_order
        #: The actions composed, and whether with the palette's key.
        self._shown: tuple[list[str], bool] | None = None

    def compose(self) -> ComposeResult:
        self._shown = self._fitting()
        actions, _ = self._shown
        for widget in super().compose():
            if (
                isinstance(widget, FooterKey)
                and not widget.has_class("-command-palette")
                and widget.action not in actions
            ):
                continue
            yield widget

    def _refit(self) -> None:
        """After a change of width or style: compose again if other keys now fit, or the
        palette's key comes or goes."""
        if self._shown is not None and self._fitting() != self._shown:
            self.refresh(recompose=True)

    def on_resize(self) -> None:
        self._refit()

    def watch_compact(self) -> None:
        self._refit()

    def watch_show_command_palette(self) -> None:
        self._refit()

    def _fitting(self) -> tuple[list[str], bool]:
        palette = self.show_command_palette
        shown = shown_keys(self, self.compact, palette, self.drop_order)
        return [action for action, _, _ in shown], palette
