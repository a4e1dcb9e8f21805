"""prod's engine (the remote dockerd) stopped and started again under the running TUI: prod's
pane says its engine is gone, naming it, while dev's pane keeps following the local engine;
`./stack status` says the same from a new process; prod's pane comes back by itself, with its
services, when the engine does. Real engines, Compose, OpenSSH; the TUI driven by Pilot."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from platform_main import platform_spec
from remote.conftest import RemoteEngine
from stack_tui.cli import EXIT_ENGINE, EXIT_OK
from stack_tui.core.environments import Platform
from support import REPO

pytestmark = pytest.mark.engine


def stack(spec: Path, *args: str) -> subprocess.Popen[str]:
    """`./stack ARGS` on the test platform, as an operator's new process: its own tunnel,
    its own reading of .env."""
    return subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "platform_main.py"), str(spec), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
    )


async def test_prods_engine_stopped_and_started_under_the_tui(
    split: Platform, remote_engine: RemoteEngine, tmp_path: Path
) -> None:
    from stack_tui.live.backend import LiveBackend
    from stack_tui.tui.app import StackApp
    from stack_tui.tui.widgets.status_bar import StatusBar
    from support import until

    here = docker.from_env()
    dev_agent = here.containers.get(f"{split.dev_project}-agent-1")
    named = f"prod's engine {remote_engine.ssh_url}"
    spec = platform_spec(split, tmp_path / "platform.json")
    app = StackApp(LiveBackend(split))
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        session = main.session

        def state(env: str, service: str) -> str:
            return str(main.pane(env).services.get_cell(service, "state"))

        def pane_text(env: str, widget: str) -> str:
            return str(main.pane(env).query_one(f"#{widget}").render())

        def bar() -> str:
            return str(main.query_one(StatusBar).render())

        def checks_say_engine_gone() -> bool | None:
            """Whether the last finished check run says an engine is gone (None: running)."""
            if session.checks_running or session.checks is None:
                return None
            return any(row.name == "Docker engine" for row in session.checks.failures)

        def prod_serves() -> bool:
            snapshot = session.statuses.get("prod")
            return (
                session.engine_down_for("prod") is None
                and snapshot is not None
                and not snapshot.error
                and len(snapshot.services) == 5
                and all(row.ok for row in snapshot.services)
            )

        await until(pilot, lambda: session.populated and prod_serves(), 60, "prod ok")
        assert state("dev", "agent") == "running"

        await asyncio.to_thread(remote_engine.stop_dockerd)
        try:
            await until(pilot, lambda: session.engine_down_for("prod") is not None, 10, "gone")
            message, hint = session.engine_down_for("prod") or ("", "")
            assert named in message and "unreachable" in message, message
            assert "reconnects by itself" in hint
            assert main.pane("prod").has_class("-problem")
            assert named in pane_text("prod", "problem")
            assert "ok)" not in pane_text("prod", "services-title")  # no health claimed
            assert session.engine_down_for("dev") is None
            assert not main.pane("dev").has_class("-problem")
            # the line a narrow terminal keeps in sight says whose engine is gone
            assert "PROD engine ✗ UNREACHABLE" in bar() and "dev ✓ 4/4 ok" in bar(), bar()

            # Another operator's `./stack status` meanwhile (new processes): prod's says what is
            # wrong and where, exit 4; dev's is the usual one, exit 0.
            prod_cli, dev_cli = stack(spec, "status"), stack(spec, "status", "--dev")
            await pilot.press("ctrl+r")  # this operator refreshes: the checks run again
            await until(pilot, lambda: checks_say_engine_gone() is True, 60, "checks: gone")
            said = {
                "prod": await asyncio.to_thread(prod_cli.communicate, timeout=120),
                "dev": await asyncio.to_thread(dev_cli.communicate, timeout=120),
            }
            assert prod_cli.returncode == EXIT_ENGINE, said["prod"][0]
            assert named in said["prod"][0] and "engine does not answer" in said["prod"][0]
            assert "Start dockerd on that host" in said["prod"][0]
            assert dev_cli.returncode == EXIT_OK, said["dev"][0]
            assert split.dev_project in said["dev"][0] and "agent" in said["dev"][0]

            # dev's pane still follows its own engine
            dev_agent.kill()
            await until(pilot, lambda: state("dev", "agent") != "running", 10, "dev kill shown")
            dev_agent.start()
            await until(pilot, lambda: state("dev", "agent") == "running", 10, "dev start shown")
            assert session.engine_down_for("prod") is not None
        finally:
            await asyncio.to_thread(remote_engine.start_dockerd)
        # Nothing pressed: the watcher reconnects, prod's pane is re-read, the engine restarts
        # prod's containers (restart: unless-stopped) and the pane follows them to healthy.
        await until(pilot, prod_serves, 120, "prod back, every service ok")
        # the checks run while it was gone are not left failing for that: they run again
        await until(pilot, lambda: checks_say_engine_gone() is False, 60, "checks: back")
        assert not main.pane("prod").has_class("-problem")
        assert " ms)" in pane_text("prod", "banner")
        assert "engine ✓" in bar() and "PROD ✓ 5/5 ok" in bar(), bar()
