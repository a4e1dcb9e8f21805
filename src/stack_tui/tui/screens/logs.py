"""One service's log, or all of an environment's services interleaved by time.

Reading, the spill, filters and search are core/logs.py's LogSession; this screen only
keys and draws. Filters (matching lines only, level, since) rescan the whole log read so
far in a thread worker; the search highlight and n/N work on the lines on screen.
"""

from __future__ import annotations

import re
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from stack_tui.core import logs
from stack_tui.core.environments import Environment, label
from stack_tui.core.errors import StackError
from stack_tui.core.logs import LogFilter, LogLine, LogSession, SearchResult
from stack_tui.live.backend import Backend
from stack_tui.tui.widgets.log_view import LogView

LEVEL_CYCLE = (None, *logs.LEVELS)
SINCE_CYCLE = ("", *logs.SINCE_CHOICES)


class NewLines(Message):
    def __init__(self, lines: list[LogLine]) -> None:
        super().__init__()
        self.lines = lines


class Rescanned(Message):
    def __init__(self, keep: LogFilter, result: SearchResult, seconds: float) -> None:
        super().__init__()
        self.keep = keep
        self.result = result
        self.seconds = seconds


class ReadingChanged(Message):
    pass


class LogsScreen(Screen[None]):
    CSS_PATH = "../screens.tcss"  # loaded when first shown, not at launch
    BINDINGS = [
        Binding("escape", "leave", "Back"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next"),
        Binding("N", "previous_match", "Prev"),
        Binding("f", "toggle_filter", "Only matching"),
        Binding("e", "cycle_level", "Level"),
        Binding("s", "cycle_since", "Since"),
        Binding("t", "toggle_timestamps", "Times"),
        Binding("end,G", "follow", "Follow", priority=True),
    ]

    def __init__(self, backend: Backend, env: Environment, services: list[str]) -> None:
        super().__init__(classes="-prod" if env.is_prod else "")
        self.backend = backend
        self.env = env
        self.services = services
        self.session: LogSession | None = None
        self.pattern_text = ""
        self.only_matching = False
        self.level: str | None = None
        self.since = ""
        self.summary = "reading…"
        self._leaving = False
        self._asked = LogFilter()  # the filter the lines on screen were chosen by

    def compose(self) -> ComposeResult:
        yield Static(id="logs-title")
        marks = max(len(s) for s in self.services) if len(self.services) > 1 else 0
        yield LogView(service_width=marks, id="logs")
        yield Input(placeholder="regular expression (Enter: keep, Esc: close)", id="logs-search")
        yield Static(id="logs-search-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#logs-search").display = False
        self.query_one("#logs-search-error").display = False
        self.query_one(LogView).focus()
        self._show_title()
        self.open_session()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    # --- reading --------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="logs")
    def open_session(self) -> None:
        try:
            sources = self.backend.log_sources(self.env, self.services)
        except StackError as err:
            self.summary = f"✗ {err.message} {err.hint}"
            self.post_message(ReadingChanged())
            return
        session = LogSession(sources, on_lines=self._lines_read, on_change=self._reading_changed)
        if self._leaving:
            session.close()
            return
        self.session = session
        try:
            tail = session.start()
        except StackError as err:
            self.summary = f"✗ {err.message}"
            tail = []
        self.post_message(NewLines(tail))
        self.post_message(ReadingChanged())

    def _lines_read(self, lines: list[LogLine]) -> None:
        self.post_message(NewLines(lines))  # from a reader thread: post_message is thread-safe

    def _reading_changed(self) -> None:
        self.post_message(ReadingChanged())

    def on_new_lines(self, message: NewLines) -> None:
        keep = self._asked
        self.view.add([line for line in message.lines if keep.keeps(line)])
        self._show_title()

    def on_reading_changed(self, message: ReadingChanged) -> None:
        if self.session is not None and self.summary == "reading…":
            self.summary = ""
        self._show_title()

    # --- filters ----------------------------------------------------------------------------

    def current_filter(self) -> LogFilter:
        pattern = self._pattern() if self.only_matching else None
        since = logs.stamp_of(logs.parse_since(self.since)) if self.since else ""
        return LogFilter(pattern=pattern, level=self.level, since=since)

    def _pattern(self) -> re.Pattern[str] | None:
        try:
            return logs.compile_pattern(self.pattern_text)
        except logs.BadPattern:
            return None

    def rescan(self) -> None:
        if self.session is None:
            return
        self.summary = "searching…"
        self._show_title()
        self._asked = self.current_filter()
        self._rescan(self._asked)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rescan")
    def _rescan(self, keep: LogFilter) -> None:
        assert self.session is not None
        started = time.monotonic()
        result = self.session.search(keep)
        self.post_message(Rescanned(keep, result, time.monotonic() - started))

    def on_rescanned(self, message: Rescanned) -> None:
        if message.keep is not self._asked:
            return  # another filter was asked for meanwhile; its scan follows
        result = message.result
        self.view.replace(result.lines)
        if message.keep.everything:
            self.summary = ""
        else:
            lines = "line" if result.matched == 1 else "lines"
            self.summary = (
                f"{result.matched:,} matching {lines} in {result.scanned_bytes / 1e6:.1f} MB "
                f"({message.seconds:.2f} s)"
            )
            if not result.complete:
                self.summary += (
                    ", more still being read"
                    if self.session and self.session.reading
                    else ", oldest lines dropped"
                )
        self._show_title()

    def action_toggle_filter(self) -> None:
        if not self.only_matching and self._pattern() is None:
            self.notify("Search first (/), then f shows only the matching lines.")
            return
        self.only_matching = not self.only_matching
        self.rescan()

    def action_cycle_level(self) -> None:
        self.level = LEVEL_CYCLE[(LEVEL_CYCLE.index(self.level) + 1) % len(LEVEL_CYCLE)]
        self.rescan()

    def action_cycle_since(self) -> None:
        self.since = SINCE_CYCLE[(SINCE_CYCLE.index(self.since) + 1) % len(SINCE_CYCLE)]
        self.rescan()

    def action_toggle_timestamps(self) -> None:
        self.view.set_display(timestamps=not self.view.timestamps)

    def action_follow(self) -> None:
        self.view.follow()
        self._show_title()

    # --- search -----------------------------------------------------------------------------

    def action_search(self) -> None:
        box = self.query_one("#logs-search", Input)
        box.display = True
        box.value = self.pattern_text
        box.focus()

    @on(Input.Changed, "#logs-search")
    def _typed(self, event: Input.Changed) -> None:
        error = self.query_one("#logs-search-error", Static)
        try:
            pattern = logs.compile_pattern(event.value)
        except logs.BadPattern as err:
            event.input.add_class("-bad-regex")
            error.update(f"✗ {err.message}")
            error.display = True
            return
        event.input.remove_class("-bad-regex")
        error.display = False
        self.pattern_text = event.value
        self.view.highlight = pattern
        self.view.current = None
        self.view.refresh()

    @on(Input.Submitted, "#logs-search")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.has_class("-bad-regex"):
            return  # the error stays under the box until the expression is fixed
        self._close_search()
        if self.only_matching:
            self.rescan()
        elif self.view.highlight is not None and not self.view.jump(forward=False):
            self.notify(
                f"No line on screen matches {self.pattern_text!r}; f searches the whole log."
            )

    def _close_search(self) -> None:
        self.query_one("#logs-search").display = False
        self.query_one("#logs-search-error").display = False
        self.view.focus()

    def action_next_match(self) -> None:
        self._jump(forward=True)

    def action_previous_match(self) -> None:
        self._jump(forward=False)

    def _jump(self, forward: bool) -> None:
        if self.view.highlight is None:
            self.notify("Search first (/).")
        elif not self.view.jump(forward):
            self.notify(f"No line on screen matches {self.pattern_text!r}.")
        self._show_title()

    def action_leave(self) -> None:
        if self.query_one("#logs-search").display:
            self._close_search()
        else:
            self.app.pop_screen()

    # --- title ------------------------------------------------------------------------------

    def on_log_view_follow_changed(self, message: LogView.FollowChanged) -> None:
        self._show_title()

    def _show_title(self) -> None:
        what = "all services" if len(self.services) > 1 else self.services[0]
        view = self.view
        if view.following:
            state = "following"
        else:
            new = f", {view.unseen} new lines" if view.unseen else ""
            state = f"PAUSED (scrolled back{new}; End follows)"
        filters = [
            f"only /{self.pattern_text}/" if self.only_matching else "",
            f"level {self.level}+" if self.level else "",
            f"since {self.since}" if self.since else "",
        ]
        reading = ""
        if self.session is not None and self.session.reading:
            reading = f"reading history {self.session.spilled_bytes / 1e6:.0f} MB"
        errors = "; ".join(self.session.errors) if self.session else ""
        parts = [state, *filters, reading, self.summary, errors]
        self.query_one("#logs-title", Static).update(
            f" {label(self.env)}  logs of {what}: " + " · ".join(p for p in parts if p)
        )

    def on_unmount(self) -> None:
        self._leaving = True
        if self.session is not None:
            self.session.close()
