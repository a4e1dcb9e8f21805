"""The deploy history screen and its rollback action, with fixed records (no engine)."""

from __future__ import annotations

import fakes
from helpers import screen_is, settled, until
from textual.widgets import DataTable, Static

from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.confirm import ConfirmScreen
from stack_tui.tui.screens.history import HistoryScreen
from stack_tui.tui.screens.main import MainScreen

WIDE = (120, 40)


def make(read_only: bool = False) -> tuple[StackApp, fakes.FixedBackend]:
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": fakes.healthy(platform, "dev"), "prod": fakes.healthy(platform, "prod")}
    )
    return StackApp(backend, read_only=read_only), backend


async def test_history_lists_newest_first_and_rolls_back_the_highlighted_record() -> None:
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        await settled(pilot)
        await pilot.press("2", "h")
        await screen_is(pilot, HistoryScreen)
        table = app.screen.query_one(DataTable)
        assert [str(row.value) for row in table.rows] == [
            "prod_20260223_130000",
            "prod_20260222_120000",
            "prod_20260221_110000",
        ]
        detail = str(app.screen.query_one("#record-detail", Static).render())
        assert "healthcheck failing" in detail and "backup before: prod_20260223" in detail
        await pilot.press("down")
        detail = str(app.screen.query_one("#record-detail", Static).render())
        assert "agent: image ghcr.io/example/ai-agent:1.4.1" in detail
        await pilot.press("U")
        await screen_is(pilot, ConfirmScreen)  # the operation's own question: prod typed
        assert backend.started == ["rollback prod prod_20260222_120000 with data"]
        await pilot.press(*"prod", "enter")
        main = app.main
        await until(
            pilot, lambda: main.session.runs["prod"].result is not None, what="rollback done"
        )
        result = main.session.runs["prod"].result
        assert result is not None and result.ok


async def test_read_only_shows_the_history_without_the_rollback_keys() -> None:
    app, backend = make(read_only=True)
    async with app.run_test(size=WIDE) as pilot:
        await settled(pilot)
        await pilot.press("h")
        await screen_is(pilot, HistoryScreen)
        await pilot.press("u", "U")
        assert isinstance(app.screen, HistoryScreen) and backend.started == []
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
