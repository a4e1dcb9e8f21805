"""Behaviour with fixed data (no engine): keys, refusals, quitting, layouts, commands."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import fakes
from helpers import screen_is, settled, until
from rich.console import Console
from textual.widgets import Footer, Static

from stack_tui.ops.events import StepStarted
from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.check import CheckScreen, CheckTable
from stack_tui.tui.screens.confirm import ConfirmScreen
from stack_tui.tui.screens.help import HelpScreen
from stack_tui.tui.screens.main import MainScreen
from stack_tui.tui.screens.operation import OperationScreen
from stack_tui.tui.widgets.status_bar import StatusBar

WIDE = (120, 40)


def make(read_only: bool = False) -> tuple[StackApp, fakes.FixedBackend]:
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": fakes.healthy(platform, "dev"), "prod": fakes.healthy(platform, "prod")}
    )
    return StackApp(backend, read_only=read_only), backend


async def test_actions_act_on_the_focused_pane() -> None:
    app, _ = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        assert main.current == "dev"
        await pilot.press("tab")
        assert main.current == "prod"
        await pilot.press("1")
        assert main.current == "dev"
        await pilot.press("2", "d")
        await screen_is(pilot, ConfirmScreen)
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.plan.title == "Deploy PROD" and screen.plan.require_typing == "prod"


async def test_prod_confirmation_needs_the_exact_name() -> None:
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        await settled(pilot)
        await pilot.press("2", "d")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press(*"PROD", "enter")  # not the name: nothing happens
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("tab", "tab", "enter")  # the confirm button is disabled
        assert backend.started == []
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen) and backend.started == []


async def test_a_second_action_on_a_busy_environment_is_refused_at_once() -> None:
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        told: list[str] = []
        main.notify = lambda message, **_: told.append(message)
        await pilot.press("d")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("tab", "enter")
        await screen_is(pilot, OperationScreen)
        await pilot.press("escape")
        await pilot.press("b")
        assert isinstance(app.screen, MainScreen)
        assert told == [
            "dev is busy: deploy started by you at 17:30:00. Wait for it to finish (o shows it)."
        ]
        backend.holders["prod"] = fakes.other_holder("restore")
        await pilot.press("2", "b")
        assert told[-1] == (
            "PROD is busy: restore by alice from 10.20.0.7 (pid 48213) since "
            "17:27:55 (2m). Wait for it to finish (o shows it)."
        )
        assert backend.started == ["deploy dev"]
        backend.release.set()
        await until(pilot, lambda: main.session.runs["dev"].result is not None)


async def test_quit_asks_while_an_operation_runs() -> None:
    app, _ = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        await pilot.press("d")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("tab", "enter")
        await screen_is(pilot, OperationScreen)
        await pilot.press("escape", "q")
        await screen_is(pilot, ConfirmScreen)
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.plan.question == "Still running: deploy on dev."
        await pilot.press("escape")  # Cancel: keep going
        assert app.is_running and main.session.runs["dev"].running
        await pilot.press("q", "tab", "enter")
        await until(pilot, lambda: not app.is_running, what="the app quits")


async def test_quit_without_an_operation_does_not_ask() -> None:
    app, _ = make()
    async with app.run_test(size=WIDE) as pilot:
        await settled(pilot)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="the app quits")


async def test_help_and_palette_list_every_action_and_only_allowed_ones() -> None:
    for read_only in (False, True):
        app, _ = make(read_only)
        async with app.run_test(size=WIDE) as pilot:
            main = await settled(pilot)
            commands = {command.title for command in app.get_system_commands(main)}
            await pilot.press("question_mark")
            await screen_is(pilot, HelpScreen)
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen)
            listed = {row.description for row in help_screen.rows}
            always = {"Logs", "Progress", "Check", "Refresh", "Quit", "Help"}
            mutating = {"Deploy", "Backup", "Restore"}
            assert always <= listed and always - {"Quit"} <= commands
            if read_only:
                assert not mutating & (listed | commands)
            else:
                assert mutating <= listed and mutating <= commands


async def test_help_at_80x24_wraps_every_description_and_scrolls_to_its_last_row() -> None:
    app, _ = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        await pilot.press("question_mark")
        await screen_is(pilot, HelpScreen)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        width = help_screen.query_one("#keys Static").content_size.width
        console = Console(width=width, record=True, file=io.StringIO())
        console.print(help_screen.table())
        lines = console.export_text().splitlines()
        assert width < 80 and max(map(len, lines)) <= width
        shown = " ".join(lines)
        for row in help_screen.rows:  # every word of every description, none cut at the edge
            assert all(word in shown for word in (row.tooltip or row.description).split())
        keys, note = help_screen.query_one("#keys"), help_screen.query_one("#help-note")
        assert note.region.bottom <= 24, "the note below the list stays on screen"
        assert keys.max_scroll_y > 0
        await pilot.press("end")
        await until(pilot, lambda: keys.scroll_y == keys.max_scroll_y, what="the list's end")
        assert keys.region.bottom <= note.region.y, "the list's last row is above the note"


async def test_narrow_terminal_shows_one_pane_and_switches() -> None:
    app, _ = make()
    async with app.run_test(size=(80, 24)) as pilot:
        main = await settled(pilot)
        assert main.has_class("-narrow")
        assert main.pane("dev").display and not main.pane("prod").display
        await pilot.press("tab")
        assert main.pane("prod").display and not main.pane("dev").display
        assert app.screen.query_one(Footer).compact
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert main.has_class("-tiny")
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not main.has_class("-narrow") and not main.has_class("-tiny")
        assert main.pane("dev").display and main.pane("prod").display


async def test_idle_app_runs_no_timer() -> None:
    """Nothing ticks while nothing changes: no clock, no blinking cursor, no interval."""
    app, _ = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        await pilot.pause(0.2)
        # Textual has no public list of timers: look at each node's (running, unpaused) ones.
        running = [
            timer
            for node in (app, main, *main.query("*"))
            for timer in node._timers
            if timer._task is not None and not timer._task.done() and timer._active.is_set()
        ]
        # The only one allowed: a one-shot redraw for when a shown age next reads differently.
        assert [timer.name for timer in running if timer.name != "ages"] == []
        assert all(timer._repeat == 0 for timer in running)
        ages = [timer for timer in running if timer.name == "ages"]
        assert len(ages) <= 1 and all(timer._interval > 0 for timer in ages)


async def test_checks_screen_lists_failures_first_in_each_section() -> None:
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform,
        {"dev": fakes.healthy(platform, "dev"), "prod": fakes.healthy(platform, "prod")},
        report=fakes.FAILING,
    )
    app = StackApp(backend)
    async with app.run_test(size=WIDE) as pilot:
        await settled(pilot)
        await pilot.press("c")
        await screen_is(pilot, CheckScreen)
        keys = app.screen.query_one(CheckTable).keys
        assert keys.index("drift/Config") < keys.index("drift/Images")
        assert keys[0].startswith("parity-same/")


async def test_following_another_process_names_it_once_and_a_silent_end_is_died(
    tmp_path: Path,
) -> None:
    app, backend = make()
    log = tmp_path / "prod_deploy.jsonl"
    log.write_text(StepStarted("prod", "up", "docker compose up").to_json() + "\n")
    backend.holders["prod"] = replace(fakes.other_holder("deploy"), log=str(log))
    async with app.run_test(size=WIDE) as pilot:
        await settled(pilot)
        await pilot.press("2", "o")
        await screen_is(pilot, OperationScreen)
        title = str(app.screen.query_one("#op-title", Static).render())
        assert "RUNNING" in title
        assert title.endswith("started 17:27:55 by alice from 10.20.0.7 (pid 48213)"), title
        del backend.holders["prod"]  # its lock is free, its log has no Result: it died
        await until(
            pilot, lambda: "DIED" in str(app.screen.query_one("#op-title", Static).render())
        )


async def test_the_status_bar_counts_services_as_the_pane_does() -> None:
    platform = fakes.make_platform()
    dev = fakes.healthy(platform, "dev")
    rows = tuple(
        replace(row, health="unhealthy") if row.service == "agent" else row for row in dev.services
    )
    backend = fakes.FixedBackend(
        platform, {"dev": replace(dev, services=rows), "prod": fakes.healthy(platform, "prod")}
    )
    app = StackApp(backend)
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        bar = str(main.query_one(StatusBar).render())
        pane = str(main.pane("dev").part("services-title", Static).render())
        assert "dev ✗ 3/4 ok" in bar and pane == "Services (3/4 ok)", (bar, pane)


async def test_refresh_runs_the_checks_again() -> None:
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        assert main.session.checks is fakes.PASSING
        backend.report = fakes.FAILING  # .env edited meanwhile
        await pilot.press("ctrl+r")
        await until(pilot, lambda: main.session.checks is fakes.FAILING, what="checks re-run")


async def test_a_died_operation_shows_until_the_next_one() -> None:
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": fakes.died(platform, "dev"), "prod": fakes.healthy(platform, "prod")}
    )
    app = StackApp(backend)
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        operation = main.pane("dev").part("operation", Static)
        assert "deploy DIED (pid 17275" in str(operation.render())
        assert "deploy DIED" in str(main.query_one(StatusBar).render())
        await pilot.press("b")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("tab", "enter")
        await screen_is(pilot, OperationScreen)
        await pilot.press("escape")
        assert "DIED" not in str(operation.render())  # a newer operation replaces it
        backend.release.set()
        await until(pilot, lambda: main.session.runs["dev"].result is not None)
        assert "DIED" not in str(operation.render())


async def test_quitting_while_an_operation_asks_answers_no_and_quits() -> None:
    """The worker blocked in push_screen_wait is released by the session closing."""
    app, backend = make()
    async with app.run_test(size=WIDE) as pilot:
        main = await settled(pilot)
        await pilot.press("2", "r", "enter")  # the newest prod backup: the restore asks
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ConfirmScreen) and app.screen.plan.require_typing == "prod"
            ),
            what="the restore's question",
        )
        run = main.session.runs["prod"]
        assert run.waiting is not None and run.running
        await app.run_action("quit")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ConfirmScreen)
                and app.screen.plan.confirm_label == "Quit anyway"
            ),
            what="quit asks",
        )
        await pilot.press("tab", "enter")
        await until(pilot, lambda: not app.is_running, what="the app quits")
    assert backend.started == ["restore prod prod_20260223_030000.sql.gz"]
