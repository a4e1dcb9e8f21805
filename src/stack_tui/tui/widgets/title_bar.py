"""The main screen's top line: the app's title and, read-only, why nothing can be changed.

Textual's Header is four widgets (itself, an icon, the title and the clock's space) and
a click makes it three lines tall; this screen uses none of that. Composing, styling and
laying out the four cost a tenth of the first frame: one widget draws the same line
(tests/tui/test_first_frame.py compares the two).
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget


class TitleBar(Widget):
    """Header's line: the title centred between the icon's 8 cells and the clock's 10. The
    app sets its title and sub-title before it starts and never changes them: nothing to
    watch."""

    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        width: 100%;
        height: 1;
        padding: 0 10 0 8;
        background: $panel;
        color: $foreground;
        content-align: center middle;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def render(self) -> Content:
        return self.app.format_title(self.app.title, self.app.sub_title)
