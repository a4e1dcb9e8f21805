"""The main screen's states, from fixed data and a frozen clock (no engine, no watcher).

snap_compare is a synchronous fixture: these are plain `def` tests. Update the
SVGs with `pytest tests/tui/test_snapshots.py --snapshot-update` and look at them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import fakes
from helpers import settled, until
from textual.pilot import Pilot

from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.confirm import ConfirmScreen
from stack_tui.tui.screens.operation import OperationScreen
from stack_tui.tui.screens.restore import RestorePicker

Compare = Callable[..., bool]
WIDE = (120, 40)


def app(
    dev: Any = fakes.healthy,
    prod: Any = fakes.healthy,
    *,
    read_only: bool = False,
    report: fakes.CheckReport = fakes.PASSING,
) -> StackApp:
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": dev(platform, "dev"), "prod": prod(platform, "prod")}, report=report
    )
    return StackApp(backend, read_only=read_only)


def keys(
    *pressed: str, then: Callable[[Pilot[int]], Awaitable[None]] | None = None
) -> Callable[[Pilot[int]], Awaitable[None]]:
    async def run_before(pilot: Pilot[int]) -> None:
        await settled(pilot)
        await pilot.press(*pressed)
        if then is not None:
            await then(pilot)
        await pilot.pause()

    return run_before


def test_both_healthy(snap_compare: Compare) -> None:
    assert snap_compare(app(), terminal_size=WIDE, run_before=keys())


def test_prod_missing_volume(snap_compare: Compare) -> None:
    assert snap_compare(app(prod=fakes.missing_volume), terminal_size=WIDE, run_before=keys("2"))


def test_engine_unreachable(snap_compare: Compare) -> None:
    assert snap_compare(
        app(fakes.unreachable, fakes.unreachable), terminal_size=WIDE, run_before=keys()
    )


def test_failing_check_badge_read_only(snap_compare: Compare) -> None:
    assert snap_compare(
        app(read_only=True, report=fakes.FAILING), terminal_size=WIDE, run_before=keys()
    )


def test_deploy_confirmation(snap_compare: Compare) -> None:
    async def modal(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))

    assert snap_compare(app(), terminal_size=WIDE, run_before=keys("2", "d", then=modal))


async def _deploy_shown(pilot: Pilot[int]) -> None:
    """The scripted deploy yields its events, then holds: wait until all are on screen."""

    def shown() -> bool:
        screen = pilot.app.screen
        return isinstance(screen, OperationScreen) and len(screen.run.events) == fakes.DEPLOY_EVENTS

    await until(pilot, shown, what="every scripted deploy event on screen")


def test_deploy_in_progress(snap_compare: Compare) -> None:
    assert snap_compare(
        app(),
        terminal_size=WIDE,
        run_before=keys("2", "d", "p", "r", "o", "d", "enter", then=_deploy_shown),
    )


def test_restore_picker(snap_compare: Compare) -> None:
    async def picker(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, RestorePicker))

    assert snap_compare(app(), terminal_size=WIDE, run_before=keys("2", "r", then=picker))


def test_restore_confirmation(snap_compare: Compare) -> None:
    async def question(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))

    assert snap_compare(
        app(), terminal_size=WIDE, run_before=keys("2", "r", "down", "enter", then=question)
    )


def test_80x24_shows_one_pane_and_both_summaries(snap_compare: Compare) -> None:
    assert snap_compare(app(prod=fakes.missing_volume), terminal_size=(80, 24), run_before=keys())


def test_80x24_prod_pane(snap_compare: Compare) -> None:
    assert snap_compare(
        app(prod=fakes.missing_volume), terminal_size=(80, 24), run_before=keys("2")
    )


def test_40x12_says_too_small(snap_compare: Compare) -> None:
    assert snap_compare(app(), terminal_size=(40, 12), run_before=keys())


def test_200x50_backups_use_the_pane_height(snap_compare: Compare) -> None:
    assert snap_compare(
        app(fakes.many_backups, fakes.many_backups), terminal_size=(200, 50), run_before=keys()
    )


def test_80x24_prod_restore_confirmation_shows_its_buttons_and_footer(
    snap_compare: Compare,
) -> None:
    async def question(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))

    assert snap_compare(
        app(), terminal_size=(80, 24), run_before=keys("2", "r", "enter", then=question)
    )


def test_80x24_checks_fit_with_the_highlighted_row_in_full(snap_compare: Compare) -> None:
    assert snap_compare(
        app(report=fakes.FAILING),
        terminal_size=(80, 24),
        run_before=keys("c", "down", "down", "down"),
    )


def test_a_killed_deploy_shows_as_died(snap_compare: Compare) -> None:
    assert snap_compare(app(prod=fakes.died), terminal_size=WIDE, run_before=keys("2"))


def test_drill_state_and_staleness(snap_compare: Compare) -> None:
    assert snap_compare(app(prod=fakes.drilled_and_stale), terminal_size=WIDE, run_before=keys("2"))


def test_drill_state_and_staleness_80x24(snap_compare: Compare) -> None:
    assert snap_compare(
        app(prod=fakes.drilled_and_stale), terminal_size=(80, 24), run_before=keys("2")
    )


def test_restore_picker_warns_about_a_failed_drill(snap_compare: Compare) -> None:
    async def warned(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, RestorePicker))
        await pilot.press("enter")  # the newest backup: its drill failed
        await pilot.pause()
        assert isinstance(pilot.app.screen, RestorePicker)  # warned, not dismissed

    assert snap_compare(
        app(prod=fakes.drilled_and_stale),
        terminal_size=WIDE,
        run_before=keys("2", "r", then=warned),
    )


def test_restore_picker_shows_the_highlighted_drill(snap_compare: Compare) -> None:
    async def second(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, RestorePicker))
        await pilot.press("down")

    assert snap_compare(
        app(prod=fakes.drilled_and_stale),
        terminal_size=WIDE,
        run_before=keys("2", "r", then=second),
    )


def test_deploy_history(snap_compare: Compare) -> None:
    assert snap_compare(app(), terminal_size=WIDE, run_before=keys("2", "h"))


def test_logs_of_all_services_with_a_search(snap_compare: Compare) -> None:
    async def searched(pilot: Pilot[int]) -> None:
        from stack_tui.tui.widgets.log_view import LogView

        view = pilot.app.screen.query_one(LogView)
        await until(pilot, lambda: view.current is not None, what="the newest match current")

    async def opened(pilot: Pilot[int]) -> None:
        from stack_tui.tui.widgets.log_view import LogView

        await until(pilot, lambda: len(pilot.app.screen.query(LogView)) == 1)
        view = pilot.app.screen.query_one(LogView)
        await until(pilot, lambda: len(view.lines) == 4 * len(fakes.SERVICE_LOG))
        await pilot.press("t", "slash", *"items|error", "enter")
        await searched(pilot)

    assert snap_compare(app(), terminal_size=WIDE, run_before=keys("L", then=opened))
