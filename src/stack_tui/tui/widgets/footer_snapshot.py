"""The footer's first frame in one widget.

Textual's Footer is a container of one FooterKey widget per key: composing, styling and
laying out a dozen widgets cost about as much as the rest of the first frame. This
widget draws the same line, cell for cell and style for style, with the Line API: the
keys the screen shows (those `shown_keys` picks, for both footers), padded and styled as
FooterKey renders them, from component classes declared like Footer's and FooterKey's
CSS. The main screen shows it for the first frame and puts the real footer in its place
right after (tests/tui/test_first_frame.py compares the two lines).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.strip import Strip
from textual.widget import Widget

#: The left edge of the command palette's key (Footer's `border-left: vkey`).
PALETTE_EDGE = "▏"


def shown_keys(
    footer: Widget, compact: bool, palette: bool, drop_order: Sequence[str]
) -> list[tuple[str, str, str]]:
    """(action, key as shown, description) of each key a footer of the screen's width shows,
    in its order: the first shown binding of each action, hidden and refused ones left out.
    When they do not fit, the actions of `drop_order` are left out, first to last, until the
    rest do (their keys still work, and `?` lists them): quit and help stay in sight."""
    app, screen = footer.app, footer.screen
    found: dict[str, tuple[str, str, str]] = {}
    for _node, binding, enabled, _tooltip in screen.active_bindings.values():
        if binding.show and enabled and binding.action not in found:
            found[binding.action] = (
                binding.action,
                app.get_key_display(binding),
                binding.description,
            )
    room = app.size.width
    if palette and app.ENABLE_COMMAND_PALETTE:
        known = screen.active_bindings.get(app.COMMAND_PALETTE_BINDING)
        if known is not None:  # its edge, key, a space, description and padding
            room -= cell_len(app.get_key_display(known[1])) + cell_len(known[1].description) + 3
    shown = list(found.values())
    # FooterKey's cells: compact, the key, a space, the description and the footer's margin;
    # else the key padded by one each side, the description and one more
    padding = 2 if compact else 3
    for action in drop_order:
        if sum(cell_len(key) + cell_len(text) + padding for _, key, text in shown) <= room:
            break
        shown = [entry for entry in shown if entry[0] != action]
    return shown


class FooterSnapshot(Widget):
    """The main screen's footer line (see the module's docstring)."""

    COMPONENT_CLASSES = {
        "footer-snapshot--key",
        "footer-snapshot--description",
        "footer-snapshot--edge",
    }
    # Footer's and FooterKey's DEFAULT_CSS, for the one line and its keys' parts.
    DEFAULT_CSS = """
    FooterSnapshot {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .footer-snapshot--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .footer-snapshot--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .footer-snapshot--edge { color: $foreground 20%; }
    }
    """

    def __init__(self, *, compact: bool, drop_order: Sequence[str]) -> None:
        super().__init__()
        self.compact = compact
        self.drop_order = drop_order

    def keys(self) -> list[tuple[str, str]]:
        """(key as shown, description) of each key the real footer shows."""
        shown = shown_keys(self, self.compact, not self.compact, self.drop_order)
        return [(key, description) for _, key, description in shown]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = RichStyle(bgcolor=self.rich_style.bgcolor)  # as the footer's blank cells
        key_style = self.get_component_rich_style("footer-snapshot--key")
        description_style = self.get_component_rich_style("footer-snapshot--description")
        segments: list[Segment] = []
        for key, description in self.keys():
            if self.compact:  # FooterKey.-compact: no key padding, a space before the
                # description, and the footer's `margin-right: 1` after each key
                segments += [
                    Segment(key, key_style),
                    Segment(f" {description}", description_style),
                    Segment(" ", base),
                ]
            else:
                segments += [
                    Segment(f" {key} ", key_style),
                    Segment(f"{description} ", description_style),
                ]
        palette: list[Segment] = []
        if not self.compact and self.app.ENABLE_COMMAND_PALETTE:
            binding = self.app.COMMAND_PALETTE_BINDING
            found = self.screen.active_bindings.get(binding)
            if found is not None:
                edge = self.get_component_rich_style("footer-snapshot--edge")
                palette = [  # a FooterKey left compact (its default: Footer binds the
                    # others' to its own), after its left edge and with `padding-right: 1`
                    Segment(PALETTE_EDGE, edge),
                    Segment(self.app.get_key_display(found[1]), key_style),
                    Segment(f" {found[1].description}", description_style),
                    Segment(" ", base),
                ]
        room = width - sum(segment.cell_length for segment in palette)
        line = Strip(segments).crop_extend(0, max(room, 0), base)
        return Strip.join([line, Strip(palette)]).crop(0, width)
