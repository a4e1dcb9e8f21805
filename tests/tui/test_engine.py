"""The TUI driven by pilot against the real engine, real Compose and real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from helpers import screen_is, until
from textual.pilot import Pilot
from textual.widgets import Log

from stack_tui.core import engine
from stack_tui.core.environments import Platform
from stack_tui.live.backend import LiveBackend
from stack_tui.ops.deploy import deploy
from stack_tui.ops.events import Result
from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.confirm import ConfirmScreen
from stack_tui.tui.screens.logs import LogsScreen
from stack_tui.tui.screens.main import MainScreen
from stack_tui.tui.screens.operation import OperationScreen
from stack_tui.tui.screens.restore import RestorePicker
from stack_tui.tui.widgets.log_view import LogView
from support import drive, psql, result_of

pytestmark = pytest.mark.engine
SIZE = (120, 40)
DEPLOY_TIMEOUT = 240


def deployed(platform: Platform, name: str) -> None:
    """Deploy without the TUI (setup for the tests that are about something else)."""
    done = result_of(drive(deploy(platform, platform.env(name))))
    assert done.ok, done


async def live(pilot: Pilot[int]) -> MainScreen:
    app = pilot.app
    assert isinstance(app, StackApp)
    main = app.main
    await until(pilot, lambda: len(main.session.statuses) == 2, what="both panes read")
    return main


async def confirm_typing(pilot: Pilot[int], text: str, question: str) -> None:
    """Wait for the dialog asking `question`, check it wants `text` typed, type it, Enter."""

    def asking() -> bool:
        screen = pilot.app.screen
        return isinstance(screen, ConfirmScreen) and question in screen.plan.question

    await until(pilot, asking, what=f"a confirmation asking {question!r}")
    screen = pilot.app.screen
    assert isinstance(screen, ConfirmScreen)
    assert screen.plan.require_typing == text
    # Keys sent before the dialog has mounted and focused its input would be lost.
    await until(
        pilot,
        lambda: any(pilot.app.focused is typed for typed in screen.query("#typed")),
        what="the dialog's input focused",
    )
    await pilot.press(*text, "enter")


async def finished(pilot: Pilot[int], main: MainScreen, env: str) -> Result:
    run = main.session.runs[env]
    await until(pilot, lambda: run.result is not None, DEPLOY_TIMEOUT, f"{env} operation done")
    assert run.result is not None
    return run.result


def cell(main: MainScreen, env: str, service: str, column: str) -> str:
    return str(main.pane(env).services.get_cell(service, column))


def project_containers(client: docker.DockerClient, project: str) -> list[object]:
    return list(
        client.containers.list(all=True, filters={"label": f"{engine.PROJECT_LABEL}={project}"})
    )


async def test_deploy_dev_with_its_confirmations_then_see_it_healthy_and_a_kill_live(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    app = StackApp(LiveBackend(platform))
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        assert main.session.statuses["dev"].missing_volumes
        await pilot.press("d")
        await screen_is(pilot, ConfirmScreen)
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert any("WARNING: Docker volume" in line for line in screen.plan.details)
        await confirm_typing(pilot, "dev", "Deploy dev")
        await confirm_typing(pilot, "dev", "Create new, EMPTY volume")
        result = await finished(pilot, main, "dev")
        assert result.ok, result.details
        assert isinstance(app.screen, OperationScreen)
        await pilot.press("escape")
        services = ("agent", "openwebui", "postgres", "qdrant")
        await until(
            pilot,
            lambda: all(cell(main, "dev", s, "health") == "healthy" for s in services),
            30,
            "dev healthy in its pane",
        )
        assert not main.session.statuses["dev"].missing_volumes

        engine_client.containers.get(f"{platform.dev.project}-agent-1").kill()
        await until(
            pilot,
            lambda: cell(main, "dev", "agent", "state") != "running",
            5,
            "the killed container shown in the dev pane",
        )
        assert cell(main, "prod", "agent", "state") == "MISSING"  # prod untouched


async def test_backup_then_restore_through_the_picker_brings_the_rows_back(
    platform: Platform,
) -> None:
    deployed(platform, "dev")
    psql(platform, "dev", "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
    app = StackApp(LiveBackend(platform))
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        await pilot.press("b")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("tab", "enter")  # Cancel has the focus: move to "Back up"
        result = await finished(pilot, main, "dev")
        assert result.ok, result.details
        await pilot.press("escape")
        await until(
            pilot,
            lambda: len(main.session.statuses["dev"].backups) == 1,
            10,
            "the new backup in the dev pane",
        )

        psql(platform, "dev", "UPDATE notes SET body = 'changed'")
        await pilot.press("r")
        await screen_is(pilot, RestorePicker)
        await pilot.press("enter")  # the newest backup is highlighted
        await confirm_typing(pilot, "dev", "Restore dev_")
        result = await finished(pilot, main, "dev")
        assert result.ok, result.details
    assert psql(platform, "dev", "SELECT body FROM notes") == "kept"


async def test_follow_a_service_log(platform: Platform) -> None:
    deployed(platform, "dev")
    app = StackApp(LiveBackend(platform))
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        table = main.pane("dev").services
        await until(pilot, lambda: "postgres" in table.keys, what="postgres listed")
        table.move_cursor(row=table.keys.index("postgres"))
        await pilot.press("l")
        await screen_is(pilot, LogsScreen)
        log = app.screen.query_one(LogView)
        await until(
            pilot,
            lambda: any("ready to accept connections" in line.text for line in log.lines),
            10,
            "postgres's log lines",
        )
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_cancelled_confirmations_change_nothing(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    app = StackApp(LiveBackend(platform))
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        await pilot.press("d")
        await screen_is(pilot, ConfirmScreen)
        await pilot.press("escape")  # the TUI's own question: nothing starts
        assert isinstance(app.screen, MainScreen)
        assert main.session.runs == {}
        assert not platform.audit_log.exists()

        await pilot.press("d")
        await confirm_typing(pilot, "dev", "Deploy dev")
        await until(
            pilot,
            lambda: isinstance(app.screen, ConfirmScreen) and "EMPTY" in app.screen.plan.question,
            what="the deploy's own question",
        )
        await pilot.press("escape")  # the operation's question: it stops before changing a thing
        result = await finished(pilot, main, "dev")
        assert not result.ok and "cancelled" in result.summary
    assert project_containers(engine_client, platform.dev.project) == []
    assert not engine.volume_exists(engine_client, platform.dev.postgres_volume)


async def test_read_only_offers_no_mutating_action(platform: Platform) -> None:
    app = StackApp(LiveBackend(platform), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        assert "READ-ONLY" in app.sub_title
        for key in ("d", "b", "r"):
            await pilot.press(key)
            assert isinstance(app.screen, MainScreen), key
        assert main.session.runs == {}
        actions = {active.binding.action for active in main.active_bindings.values()}
        assert actions.isdisjoint({"deploy", "backup", "restore"})
        titles = {command.title for command in app.get_system_commands(main)}  # type: ignore[arg-type]
        assert titles.isdisjoint({"Deploy", "Backup", "Restore"})
        assert {"Logs", "Refresh", "Check"} <= titles
    assert not platform.audit_log.exists()


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from stack_tui.core.environments import Platform
    from stack_tui.ops.events import Outcome, OutputLine, Result, StepFinished, StepStarted
    from stack_tui.ops.runner import locked

    data, env_file, compose, dev, prod, release = sys.argv[1:]
    platform = Platform(root=Path(compose).parent, dev_project=dev, prod_project=prod,
                        data_dir=Path(data), env_file=Path(env_file), compose_dir=Path(compose))

    def body(_):
        yield StepStarted("dev", "backup", "another operator's backup")
        yield OutputLine("dev", "dumping...")
        while not Path(release).exists():
            time.sleep(0.02)
        yield StepFinished("dev", "backup")
        yield Result("dev", "backup", Outcome.OK, summary="the other backup finished")

    for event in locked(platform, platform.dev, "backup", {}, body):
        print(event.kind, flush=True)
""")


@pytest.fixture
def other_process(
    platform: Platform, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process holding dev's lock and running an operation until `release` exists."""
    release = tmp_path / "release"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLDER,
            str(platform.data),
            str(platform.dotenv),
            str(platform.compose),
            platform.dev_project,
            platform.prod_project,
            str(release),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "step_started"
    try:
        yield proc, release
    finally:
        release.touch()
        proc.wait(timeout=30)


async def test_another_process_operation_is_shown_refused_and_followed_live(
    platform: Platform, other_process: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, release = other_process
    app = StackApp(LiveBackend(platform))
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        await until(
            pilot,
            lambda: getattr(main.session.other_holder("dev"), "pid", 0) == proc.pid,
            10,
            "the other process's lock in the dev pane",
        )
        told: list[str] = []
        main.notify = lambda message, **_: told.append(message)  # type: ignore[method-assign]
        await pilot.press("b")
        assert isinstance(app.screen, MainScreen)
        assert told and "dev is busy: backup by" in told[0] and f"pid {proc.pid}" in told[0]

        await pilot.press("o")
        await screen_is(pilot, OperationScreen)
        screen = app.screen
        assert isinstance(screen, OperationScreen) and not screen.run.ours
        await until(
            pilot,
            lambda: any("dumping..." in line for line in screen.query_one(Log).lines),
            10,
            "the other process's output",
        )
        release.touch()
        await until(pilot, lambda: screen.run.result is not None, 10, "its result")
        assert screen.run.result is not None and screen.run.result.ok
    assert main.session.runs == {}
