"""The TUI under faults and bad input: busy environments, tiny terminals, wrong answers,
hostile files, secrets in what it shows, and a host full of unrelated containers."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import docker
import pytest
from textual.widgets import Static

from faults.common import (
    Tmux,
    all_checksums,
    cli_code,
    fake_backup,
    platform_code,
    record_notifications,
    screen_text,
    secret_leaks,
    widget_texts,
)
from stack_tui.core import audit, backups, engine, locks
from stack_tui.core.environments import Platform
from stack_tui.live.backend import LiveBackend
from stack_tui.ops.events import Outcome
from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.confirm import ConfirmScreen
from stack_tui.tui.screens.help import HelpScreen
from stack_tui.tui.screens.logs import LogsScreen
from stack_tui.tui.screens.main import MainScreen
from stack_tui.tui.screens.operation import OperationScreen
from stack_tui.tui.screens.restore import RestorePicker
from stack_tui.tui.widgets.tables import BackupFilesTable, BackupsTable
from support import REPO, TEST_IMAGES, TEST_SECRETS, psql, skip_or_fail, until, wait_for

pytestmark = pytest.mark.engine

SIZE = (120, 40)
NOTES = "SELECT id, body FROM notes ORDER BY id"


async def both_panes(pilot, app: StackApp) -> MainScreen:  # type: ignore[no-untyped-def]
    main = app.main
    await until(pilot, lambda: len(main.session.statuses) == 2, 15, "both panes read")
    return main


def cell(main: MainScreen, env: str, service: str, column: str) -> str:
    table = main.pane(env).services
    return str(table.get_cell(service, column)) if service in table.keys else ""


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        skip_or_fail("needs tmux")
    server = Tmux(f"stt-faults-{uuid.uuid4().hex[:8]}")
    try:
        yield server
    finally:
        server.kill()


# --- two TUIs and a CLI -------------------------------------------------------------------------


async def test_two_tuis_and_a_cli_on_one_environment_run_one_operation_and_name_its_holder(
    big: Platform,
    tmux: Tmux,
    tmp_path: Path,
) -> None:
    """The CLI's restore waits at its prompt holding dev's lock; a real `stack` TUI in a
    terminal and a pilot-driven one both try to act on dev and are told who holds it."""
    dump = fake_backup(big.backups_dir, "dev", datetime(2024, 1, 1))
    rc_file = tmp_path / "cli.rc"
    cli_script = tmp_path / "cli.py"
    cli_script.write_text(
        cli_code(big, ["dev", "backup", "restore", str(dump)])
        .replace("sys.exit(cli.main(", "code = cli.main(")
        .replace("platform=p))", f"platform=p)\nopen({str(rc_file)!r}, 'w').write(str(code))")
    )
    tui_script = tmp_path / "tui.py"
    tui_script.write_text(
        platform_code(big) + "from stack_tui.tui import run\nsys.exit(run(platform=p))\n"
    )
    tmux.start("cli", [sys.executable, str(cli_script)])
    wait_for(lambda: "to go on" in tmux.screen("cli"), 60)
    holder = locks.holder(big.locks_dir, big.dev_project)
    assert holder is not None and holder.operation == "restore"
    tmux.start("tui", [sys.executable, str(tui_script)], env={"TERM": "xterm-256color"})
    told = f"restore by {holder.user}"
    wait_for(
        lambda: told in tmux.screen("tui") and f"pid {holder.pid}" in tmux.screen("tui"), 20
    )  # the other terminal's pane shows the holder live

    app = StackApp(LiveBackend(big))
    shown = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        main = await both_panes(pilot, app)
        await until(
            pilot,
            lambda: told in str(main.pane("dev").part("operation", Static).content),
            10,
            "the pilot TUI's dev pane names the holder",
        )
        for key in ("b", "d", "r"):
            await pilot.press("1", key)
            await until(
                pilot,
                lambda: any(f"pid {holder.pid}" in n for n in shown),
                5,
                f"{key}: told who holds dev",
            )
            assert isinstance(app.screen, MainScreen), f"{key} opened {app.screen}"
            refusal = shown.pop()
            assert "dev is busy" in refusal and told in refusal, refusal
        tmux.keys("tui", "1", "b")
        wait_for(lambda: "busy" in tmux.screen("tui"), 10)
        assert f"pid {holder.pid}" in tmux.screen("tui")
        assert main.session.runs == {}

        tmux.keys("cli", "dev", "Enter")  # now the one operation goes on, and ends
        wait_for(lambda: rc_file.exists(), 60)
        assert rc_file.read_text() == "0", tmux.screen("cli")
        await until(
            pilot,
            lambda: (
                "No operation running" in str(main.pane("dev").part("operation", Static).content)
            ),
            10,
        )
    wait_for(lambda: "No operation running" in tmux.screen("tui"), 10)
    tmux.keys("tui", "q")
    entries = [(e["env"], e["operation"], e["result"]) for e in audit.read(big.audit_log)]
    assert entries == [("dev", "restore", "ok")], "exactly one operation ran"
    print(f"\ntwo TUIs and a CLI: refused with {refusal!r}; audit {entries}")


# --- a terminal as small as 40x12 ---------------------------------------------------------------


async def test_a_40x12_terminal_says_so_and_nothing_crashes_or_runs(big: Platform) -> None:
    app = StackApp(LiveBackend(big))
    async with app.run_test(size=(40, 12)) as pilot:
        main = await both_panes(pilot, app)
        await pilot.pause()
        text = screen_text(app)
        assert "too small (40x12)" in text and "q quits" in text, text
        for key in ("?", "tab", "2", "1", "ctrl+r", "o", "l", "c"):
            await pilot.press(key)
            await pilot.pause()
            while not isinstance(app.screen, MainScreen):
                await pilot.press("escape")
                await pilot.pause()
        await pilot.press("b")  # asked for: the confirmation opens; Esc cancels it
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5)
        await pilot.press("escape")
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert "too small" not in screen_text(app)
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert "too small (40x12)" in screen_text(app)
        assert main.session.runs == {} and app.is_running
    assert audit.read(big.audit_log) == []
    assert all_checksums(big.backups_dir) == {}


# --- values typed into the TUI ------------------------------------------------------------------


async def test_a_wrong_typed_name_confirms_nothing(big: Platform) -> None:
    app = StackApp(LiveBackend(big))
    shown = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        main = await both_panes(pilot, app)
        await pilot.press("2", "b")  # prod: its name must be typed
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5)
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen) and dialog.plan.require_typing == "prod"
        typed = dialog.query_one("#typed")
        await pilot.press(*"prdo", "enter")  # typed key by key
        await pilot.pause()
        assert app.screen is dialog and "Type exactly 'prod'" in shown[-1]
        for wrong in (
            "PROD",
            "prod ",
            " prod",
            "prod\n",
            "prod; touch /tmp/pwned",
            "dev",
            "prød",
            "p\u200brod",
            "\udcff",
            "",
        ):
            typed.value = wrong  # type: ignore[attr-defined]  # pasted, as a terminal would
            typed.focus()
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is dialog, f"{wrong!r} confirmed"
            assert dialog.query_one("#confirm").disabled, wrong
            assert "Type exactly 'prod'" in shown[-1]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), 5)
        assert main.session.runs == {}
    assert audit.read(big.audit_log) == []
    assert all_checksums(big.backups_dir) == {}
    assert not list(Path("/tmp").glob("pwned*"))


async def test_restore_picker_with_hostile_files_restores_nothing(
    big: Platform, tmp_path: Path
) -> None:
    directory = big.backups_dir
    fake_backup(directory, "dev", datetime(2024, 1, 1))
    (directory / "dev_20240109_000000.sql.gz").touch(mode=0o600)  # zero bytes
    with (directory / "dev_20240110_000000.sql.gz").open("wb") as out:
        for _ in range(50):
            out.write(os.urandom(1 << 20))  # 50 MB, not gzip
    outside = tmp_path / "dev_20240106_000000.sql.gz"
    shutil.copyfile(directory / "dev_20240101_000000.sql.gz", outside)
    (directory / "dev_20240106_000000.sql.gz").symlink_to(outside)
    (directory / "dev_20240108_000000.sql.gz").symlink_to(tmp_path / "gone")
    os.mkfifo(directory / "dev_20240115_000000.sql.gz")
    with open(os.path.join(os.fsencode(directory), b"dev_2024\xff_000000.sql.gz"), "wb") as raw:
        raw.write(b"\x1f\x8b")
    (directory / "x; touch pwned.sql.gz").write_bytes(b"\x1f\x8b")
    before = all_checksums(directory)
    # A restore by an earlier test on this shared database made it exactly that backup:
    # the notes table is there only if the backup had it.
    psql(big, "dev", "CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text)")
    rows = psql(big, "dev", NOTES)
    bad = {
        "dev_20240109_000000.sql.gz": "empty",
        "dev_20240110_000000.sql.gz": "not a gzip",
        "dev_20240106_000000.sql.gz": "outside",
    }
    listed = {info.name for info in backups.list_backups(directory, "dev")}
    assert {"dev_20240101_000000.sql.gz", *list(bad)[:2]} <= listed
    bad = {name: said for name, said in bad.items() if name in listed}  # a symlink may be left out

    app = StackApp(LiveBackend(big))
    async with app.run_test(size=SIZE) as pilot:
        main = await both_panes(pilot, app)
        backups_table = main.pane("dev").part("backups", BackupsTable)

        def keys() -> set[str]:
            return {Path(k).name for k in backups_table.keys}

        await until(pilot, lambda: keys() == listed, 10, f"the pane lists {sorted(listed)}")
        await until(pilot, lambda: "FAILED" in widget_texts(app), 10, "bad ones shown FAILED")
        for name, said in bad.items():
            await pilot.press("1", "r")
            await until(pilot, lambda: isinstance(app.screen, RestorePicker), 5)
            table = app.screen.query_one(BackupFilesTable)
            table.move_cursor(row=table.keys.index(str(directory / name)))
            await pilot.press("enter")

            def run_done() -> bool:
                runs = main.session.runs
                return runs.get("dev") is not None and runs["dev"].result is not None

            await until(pilot, run_done, 20, f"the restore of {name} ended")
            result = main.session.runs["dev"].result
            assert result is not None and said in result.summary, result
            assert result.outcome is Outcome.REFUSED, result  # nothing ran: refused, not failed
            assert isinstance(app.screen, OperationScreen)
            assert "REFUSED" in screen_text(app)
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, MainScreen), 5)
            del main.session.runs["dev"]
        assert app.is_running
    assert all_checksums(directory) == before, "a refused restore takes no safety backup"
    assert psql(big, "dev", NOTES) == rows
    results = [e["result"] for e in audit.read(big.audit_log)]
    assert len(results) == len(bad) and set(results) <= {"refused", "failed"}, results
    assert not list(Path("/tmp").glob("pwned*")) and not list(REPO.glob("pwned*"))


# --- secrets in what the TUI shows --------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        'ports: ["${POSTGRES_PASSWORD}:5432"]',  # Compose echoes the whole value
        "shm_size: ${POSTGRES_PASSWORD}",  # Compose echoes all but its last character
    ],
)
async def test_compose_errors_in_the_panes_show_no_secret(
    big: Platform, tmp_path: Path, field: str
) -> None:
    compose_dir = tmp_path / "compose"
    shutil.copytree(REPO / "compose", compose_dir)
    for name in ("docker-compose.dev.yml", "docker-compose.prod.yml"):
        overlay = compose_dir / name
        overlay.write_text(
            overlay.read_text().replace("  postgres:\n", f"  postgres:\n    {field}\n", 1)
        )
    broken = dataclasses.replace(big, compose_dir=compose_dir)
    app = StackApp(LiveBackend(broken))
    async with app.run_test(size=SIZE) as pilot:
        main = await both_panes(pilot, app)
        await pilot.pause()
        error = main.session.statuses["dev"].error
        assert error and "compose" in error
        shown = {"screen": screen_text(app), "widgets": widget_texts(app)}
        assert secret_leaks(shown) == [], shown["widgets"]
        # The engine answers: the panes must not blame it for a compose file's error.
        assert "engine does not answer" not in shown["screen"], shown["screen"]


@pytest.fixture
def chatty_agent(big: Platform) -> Iterator[docker.models.containers.Container]:
    """A container of dev's agent service that prints its environment, secrets included."""
    client = docker.from_env()
    container = client.containers.run(
        TEST_IMAGES["AGENT_IMAGE"],
        detach=True,
        name=f"{big.dev_project}-agent-1",
        entrypoint=["sh", "-c", "env; echo key=$OPENAI_API_KEY; exec /bin/serve 8000 --"],
        environment=dict(TEST_SECRETS),
        network_mode="none",
        labels={engine.PROJECT_LABEL: big.dev_project, engine.SERVICE_LABEL: "agent"},
    )
    try:
        yield container
    finally:
        container.remove(force=True)


async def test_service_logs_in_the_tui_show_no_secret(
    big: Platform, chatty_agent: docker.models.containers.Container
) -> None:
    wait_for(lambda: b"key=" in chatty_agent.logs(), 10)
    app = StackApp(LiveBackend(big))
    async with app.run_test(size=SIZE) as pilot:
        main = await both_panes(pilot, app)
        await until(pilot, lambda: cell(main, "dev", "agent", "state") == "running", 10)
        table = main.pane("dev").services
        await pilot.press("1")
        table.move_cursor(row=table.keys.index("agent"))
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen), 5)
        await until(pilot, lambda: "key=" in widget_texts(app), 10, "the agent's log shown")
        shown = {"screen": screen_text(app), "widgets": widget_texts(app)}
        assert "key=***" in shown["widgets"]
        assert secret_leaks(shown) == []
        await pilot.press("escape")


# --- load: unrelated containers churning --------------------------------------------------------

CHURN = int(os.environ.get("STT_CHURN_CONTAINERS", "40"))
THREADS = 4


async def test_unrelated_containers_churning_leave_the_panes_correct_and_responsive(
    big: Platform, chatty_agent: docker.models.containers.Container
) -> None:
    client = docker.from_env()
    label = f"stt-load={uuid.uuid4().hex[:8]}"
    crowd = [
        client.containers.create(
            TEST_IMAGES["AGENT_IMAGE"], network_mode="none", labels=dict([label.split("=")])
        )
        for _ in range(CHURN)
    ]
    stop = threading.Event()
    done = [0]  # starts and kills so far
    counted = threading.Lock()

    def churn(mine: list[docker.models.containers.Container]) -> None:
        up = False
        while not stop.is_set():
            up = not up
            for container in mine:
                if stop.is_set():
                    return
                container.start() if up else container.kill()
                with counted:
                    done[0] += 1

    workers = [
        threading.Thread(target=churn, args=(crowd[n::THREADS],), daemon=True)
        for n in range(THREADS)
    ]
    app = StackApp(LiveBackend(big))
    try:
        async with app.run_test(size=SIZE) as pilot:
            main = await both_panes(pilot, app)
            for worker in workers:
                worker.start()
            await until(pilot, lambda: cell(main, "dev", "agent", "state") == "running", 10)
            await until(pilot, lambda: done[0] >= 12, 30, "the crowd is moving")
            latencies = []
            for _ in range(3):
                started = time.monotonic()
                await pilot.press("question_mark")
                await until(pilot, lambda: isinstance(app.screen, HelpScreen), 2)
                latencies.append(time.monotonic() - started)
                await pilot.press("escape")
                await until(pilot, lambda: isinstance(app.screen, MainScreen), 2)
            chatty_agent.kill()
            shown_dead = await until(
                pilot,
                lambda: cell(main, "dev", "agent", "state") not in ("running", ""),
                3,
                "the killed agent shown in the dev pane",
            )
            chatty_agent.start()
            shown_back = await until(
                pilot,
                lambda: cell(main, "dev", "agent", "state") == ("running"),
                3,
                "the restarted agent shown in the dev pane",
            )
            assert main.pane("dev").services.keys == ["agent", "openwebui", "postgres", "qdrant"]
            assert cell(main, "dev", "postgres", "state") == "running"
            assert main.pane("prod").services.keys == [
                "agent",
                "openwebui",
                "postgres",
                "qdrant",
                "traefik",
            ]
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
    print(
        f"\nload: {CHURN} containers, {done[0]} starts/kills; help opened in "
        f"{max(latencies) * 1000:.0f} ms at worst; kill shown in {shown_dead:.2f} s, "
        f"restart in {shown_back:.2f} s"
    )
