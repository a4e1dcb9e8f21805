"""Resource use in the TUI with fixed samples (no engine): on and off with `t`, streams only
for what is on screen, the minute's sparklines with `T`; the shell's read-only rule."""

from __future__ import annotations

import fakes
from helpers import screen_is, settled, until
from textual.widgets import Sparkline, Static

from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.logs import LogsScreen
from stack_tui.tui.screens.main import MainScreen
from stack_tui.tui.screens.resources import ResourceScreen

WIDE, NARROW = (120, 40), (80, 24)


def make(read_only: bool = False) -> tuple[StackApp, fakes.FixedBackend]:
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": fakes.healthy(platform, "dev"), "prod": fakes.healthy(platform, "prod")}
    )
    return StackApp(backend, read_only=read_only), backend


def shown(main: MainScreen, env: str) -> str:
    widget = main.pane(env).part("resources", Static)
    return str(widget.render()) if widget.display else ""


async def test_t_turns_resource_use_on_for_the_panes_on_screen_and_off_again() -> None:
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        assert backend.samplers == [] and shown(main, "dev") == ""
        await pilot.press("t")
        await until(pilot, lambda: "agent" in shown(main, "prod"), what="prod's resource use")
        assert sorted(main.session.samplers) == ["dev", "prod"]
        assert "cpu" in shown(main, "dev") and "MiB" in shown(main, "dev")
        await pilot.press("t")
        assert main.session.samplers == {} and all(s.stopped for s in backend.samplers)
        assert shown(main, "dev") == "" and shown(main, "prod") == ""


async def test_streams_stop_while_another_screen_covers_the_panes() -> None:
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        await pilot.press("t")
        await until(pilot, lambda: len(main.session.samplers) == 2, what="both sampled")
        await pilot.press("l")
        await screen_is(pilot, LogsScreen)
        assert main.session.samplers == {} and all(s.stopped for s in backend.samplers)
        await pilot.press("escape")
        await screen_is(pilot, MainScreen)
        assert sorted(main.session.samplers) == ["dev", "prod"]  # back on screen: again


async def test_narrow_terminal_samples_only_the_pane_it_shows() -> None:
    app, _ = make()
    async with app.run_test(size=NARROW) as pilot:
        main = await settled(pilot)
        await pilot.press("t")
        assert list(main.session.samplers) == ["dev"]
        await pilot.press("2")
        assert list(main.session.samplers) == ["prod"]


async def test_T_shows_a_minute_per_service_and_stops_when_left() -> None:
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        await pilot.press("2", "T")
        await screen_is(pilot, ResourceScreen)
        assert list(main.session.samplers) == ["prod"]  # resource use is off in the panes
        await until(
            pilot,
            lambda: len(app.screen.query_one("#cpu-0", Sparkline).data or []) == 60,
            what="a minute of CPU samples",
        )
        await pilot.press("escape")
        await screen_is(pilot, MainScreen)
        assert main.session.samplers == {} and backend.samplers[0].stopped


async def test_read_only_offers_no_shell_but_psql() -> None:
    app, _ = make(read_only=True)
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        assert main.check_action("shell", ()) is False
        assert main.check_action("psql", ()) is True
        await pilot.press("p")  # the fixed backend refuses: said, nothing suspended
        await until(
            pilot,
            lambda: any("postgres is not running" in str(n.message) for n in app._notifications),
            what="the refusal",
        )
        assert isinstance(app.screen, MainScreen)
