"""A bounded buffer of log lines, drawn line by line (only the visible ones are rendered).

Matches of the search are highlighted; `current` is the match n/N moved to. Following:
new lines scroll into view unless the operator scrolled back, which pauses it.
"""

from __future__ import annotations

import re
from collections import deque

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from stack_tui.core.logs import VIEW_LINES, LogLine, local_time

MATCH = Style(color="black", bgcolor="yellow")
CURRENT = Style(color="black", bgcolor="bright_magenta", bold=True)
SERVICE_STYLES = ("cyan", "green", "magenta", "blue", "yellow", "bright_cyan", "bright_green")
#: The widest line measured for horizontal scrolling (longer ones are cut there).
WIDEST = 2_000


class LogView(ScrollView, can_focus=True):
    class FollowChanged(Message):
        def __init__(self, following: bool) -> None:
            super().__init__()
            self.following = following

    def __init__(self, service_width: int = 0, *, id: str | None = None) -> None:
        """`service_width`: each line starts with its service, padded to this (0: not shown)."""
        super().__init__(id=id)
        self.lines: deque[LogLine] = deque(maxlen=VIEW_LINES)
        self.service_width = service_width
        self.timestamps = False
        self.highlight: re.Pattern[str] | None = None
        self.current: int | None = None  # index in `lines` of the match n/N is on
        self.following = True
        self.unseen = 0  # lines that came while paused
        self._services: dict[str, int] = {}
        self._widest = 0

    # --- content ------------------------------------------------------------------------

    def replace(self, lines: list[LogLine]) -> None:
        self.lines.clear()
        self.current = None
        self._widest = 0
        self._add(lines)
        self.follow()

    def add(self, lines: list[LogLine]) -> None:
        dropped = max(0, len(self.lines) + len(lines) - VIEW_LINES)
        self._add(lines)
        if self.current is not None:
            self.current = self.current - dropped if self.current >= dropped else None
        if self.following:
            self.scroll_end(animate=False)
        else:
            self.unseen += len(lines)
            if dropped:  # keep the lines the operator is reading where they are
                self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False)

    def _add(self, lines: list[LogLine]) -> None:
        self.lines.extend(lines)
        for line in lines[-VIEW_LINES:]:
            self._widest = min(WIDEST, max(self._widest, len(line.text)))
        self.virtual_size = Size(self._widest + self._prefix_width(), len(self.lines))
        self.refresh()

    def set_display(self, *, timestamps: bool | None = None) -> None:
        if timestamps is not None:
            self.timestamps = timestamps
        self.virtual_size = Size(self._widest + self._prefix_width(), len(self.lines))
        self.refresh()

    def _prefix_width(self) -> int:
        width = 21 if self.timestamps else 0
        return width + (self.service_width + 1 if self.service_width else 0)

    # --- following -----------------------------------------------------------------------

    def follow(self) -> None:
        self.unseen = 0
        self._set_following(True)
        self.scroll_end(animate=False)

    def _keep_at_end(self) -> None:
        if self.following and self.scroll_y < self.max_scroll_y:
            self.scroll_end(animate=False, immediate=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and new < self.max_scroll_y:
            self._set_following(False)
        elif new >= self.max_scroll_y and not self.following:
            self.unseen = 0
            self._set_following(True)

    def _set_following(self, following: bool) -> None:
        if following != self.following:
            self.following = following
            self.post_message(self.FollowChanged(following))

    # --- search --------------------------------------------------------------------------

    def matches(self) -> list[int]:
        if self.highlight is None:
            return []
        return [n for n, line in enumerate(self.lines) if self.highlight.search(line.text)]

    def jump(self, forward: bool) -> bool:
        """To the next match below (forward) or above the current one (or the screen's
        middle); wraps around. False when nothing matches."""
        found = self.matches()
        if not found:
            return False
        here = (
            self.current
            if self.current is not None
            else int(self.scroll_y) + (self.size.height // 2 if forward else self.size.height)
        )
        after = [n for n in found if n > here] if forward else [n for n in found if n < here]
        self.current = (
            (after[0] if after else found[0]) if forward else (after[-1] if after else found[-1])
        )
        self.scroll_to(y=max(0, self.current - self.size.height // 2), animate=False)
        if self.current < len(self.lines) - self.size.height:
            self._set_following(False)
        self.refresh()
        return True

    # --- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        if y == 0 and self.following and self.scroll_y < self.max_scroll_y:
            # Drawn short of the end while following: a scroll to the end ran before the
            # new lines were laid out (seen with the logs screen's first lines). Once more.
            self.call_later(self._keep_at_end)
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        line = self.lines[index]
        text = Text(no_wrap=True, end="")
        if self.timestamps:
            text.append(f"{local_time(line.stamp)}  ", style="dim")
        if self.service_width:
            text.append(
                f"{line.service:<{self.service_width}} ", style=self._service_style(line.service)
            )
        start = len(text)
        text.append(line.text[:WIDEST])
        if self.highlight is not None:
            style = CURRENT if index == self.current else MATCH
            for found in self.highlight.finditer(line.text[:WIDEST]):
                if found.end() > found.start():
                    text.stylize(style, start + found.start(), start + found.end())
        strip = Strip(text.render(self.app.console), text.cell_len)
        return (
            strip.crop(scroll_x, scroll_x + width)
            .extend_cell_length(width)
            .apply_style(self.rich_style)
        )

    def _service_style(self, service: str) -> str:
        number = self._services.setdefault(service, len(self._services))
        return f"bold {SERVICE_STYLES[number % len(SERVICE_STYLES)]}"
