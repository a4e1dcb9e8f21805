"""The logs screen's keys under pilot, on fixed lines (the same keys on a real engine:
tests/tui/test_logs_engine.py)."""

from __future__ import annotations

import fakes
from helpers import screen_is, until
from textual.pilot import Pilot
from textual.widgets import Input, Static

from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.logs import LogsScreen
from stack_tui.tui.widgets.log_view import LogView

SIZE = (120, 30)


def make() -> StackApp:
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": fakes.healthy(platform, "dev"), "prod": fakes.healthy(platform, "prod")}
    )
    return StackApp(backend)


async def opened(pilot: Pilot[int], key: str) -> LogView:
    app = pilot.app
    assert isinstance(app, StackApp)
    await until(pilot, lambda: app.main.pane("prod").services.keys, what="prod's services listed")
    await pilot.press(key)
    await screen_is(pilot, LogsScreen)
    view = pilot.app.screen.query_one(LogView)
    await until(pilot, lambda: len(view.lines) == len(fakes.SERVICE_LOG) * (1 if key == "l" else 4))
    return view


def title(pilot: Pilot[int]) -> str:
    return str(pilot.app.screen.query_one("#logs-title", Static).render())


async def test_search_highlights_and_n_and_N_move_between_matches() -> None:
    app = make()
    async with app.run_test(size=SIZE) as pilot:
        view = await opened(pilot, "l")
        await pilot.press("slash", *"items", "enter")
        assert view.matches() == [3, 5]
        assert view.current == 5  # Enter goes to the newest match
        await pilot.press("N")
        assert view.current == 3
        await pilot.press("N")  # wraps around
        assert view.current == 5
        await pilot.press("n")
        assert view.current == 3


async def test_a_bad_regex_is_an_error_in_the_search_box_not_a_crash() -> None:
    app = make()
    async with app.run_test(size=SIZE) as pilot:
        view = await opened(pilot, "l")
        await pilot.press("slash", *"items(", "enter")
        box = app.screen.query_one("#logs-search", Input)
        error = app.screen.query_one("#logs-search-error", Static)
        assert box.display and box.has_class("-bad-regex")
        assert "Not a regular expression" in str(error.render())
        await pilot.press("backspace", "enter")
        assert not box.display and view.matches() == [3, 5]


async def test_only_matching_lines_level_and_since_filters() -> None:
    app = make()
    async with app.run_test(size=SIZE) as pilot:
        view = await opened(pilot, "l")
        await pilot.press("slash", *"items", "enter", "f")
        await until(pilot, lambda: len(view.lines) == 2, what="only the matching lines")
        assert "2 matching lines" in title(pilot)
        await pilot.press("f", "e")  # matching off; level: error
        await until(pilot, lambda: len(view.lines) == 2, what="the error lines")
        assert [line.text[:5] for line in view.lines] == ["ERROR", "level"]
        await pilot.press("e")  # warn and more severe
        await until(pilot, lambda: len(view.lines) == 3, what="warn and error lines")
        await pilot.press("e", "e", "s")  # level off; since 10 minutes (the lines are older)
        await until(pilot, lambda: len(view.lines) == 0, what="nothing in the last 10 minutes")
        assert "since 10m" in title(pilot)


async def test_timestamps_and_all_services_interleaved_by_time() -> None:
    app = make()
    async with app.run_test(size=SIZE) as pilot:
        view = await opened(pilot, "L")
        services = [line.service for line in view.lines]
        assert services[:4] == ["agent", "openwebui", "postgres", "qdrant"]  # interleaved
        stamps = [line.stamp for line in view.lines]
        assert stamps == sorted(stamps)
        first = view.render_line(0).text
        await pilot.press("t")
        assert view.render_line(0).text.startswith("2026-02-23 17:")
        assert view.lines[0].service in first


async def test_scrolling_back_pauses_follow_and_says_so() -> None:
    app = make()
    async with app.run_test(size=(80, 8)) as pilot:
        view = await opened(pilot, "L")
        assert view.following
        # The view follows: at its end once laid out (it once stayed at the top).
        await until(pilot, lambda: 0 < view.scroll_y == view.max_scroll_y, what="at its end")
        view.scroll_to(y=0, animate=False)
        await until(pilot, lambda: "PAUSED" in title(pilot), what="follow paused, said")
        assert not view.following
        await pilot.press("end")
        await until(pilot, lambda: "following" in title(pilot), what="following again, said")
        assert view.following
