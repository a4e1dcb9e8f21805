"""`./stack` in a real terminal, driven the way a person over SSH drives it: tmux keys in,
the screen read back. Nothing is changed: the platform's real project names are used
(they are hardcoded), so the test only looks, opens dialogs and cancels them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from stack_tui.core import engine
from stack_tui.core.environments import DEV_PROJECT_NAME, PROD_PROJECT_NAME
from support import REPO, skip_or_fail, wait_for, write_env_file

pytestmark = pytest.mark.engine


class Terminal:
    def __init__(self, session: str) -> None:
        self.session = session

    def screen(self) -> str:
        done = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.session],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        """One key at a time, as typed: Escape followed at once by a letter reads as Alt."""
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.session, key], check=True)

    def shows(self, text: str, timeout: float = 15) -> None:
        wait_for(lambda: text in self.screen(), timeout=timeout, interval=0.05)

    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "has-session", "-t", self.session], capture_output=True, check=False
            ).returncode
            == 0
        )


@pytest.fixture
def terminal(tmp_path: Path, engine_client: docker.DockerClient) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        skip_or_fail("needs tmux (scripts/test-engine installs it)")
    root = tmp_path / "platform"
    (root / "data").mkdir(parents=True)
    (root / "compose").symlink_to(REPO / "compose")
    write_env_file(root / ".env")
    session = f"stt-e2e-{uuid.uuid4().hex[:8]}"
    command = f"cd {root} && env STACK_ROOT={root} TERM=xterm-256color {REPO / 'stack'}; sleep 30"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
        env={**os.environ, "TMUX": ""},
    )
    try:
        yield Terminal(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)


def platform_containers(client: docker.DockerClient) -> list[str]:
    return sorted(
        container.name
        for project in (DEV_PROJECT_NAME, PROD_PROJECT_NAME)
        for container in client.containers.list(
            all=True, filters={"label": f"{engine.PROJECT_LABEL}={project}"}
        )
    )


def test_stack_opens_both_panes_and_cancels_a_deploy_over_a_terminal(
    terminal: Terminal, engine_client: docker.DockerClient, tmp_path: Path
) -> None:
    before = platform_containers(engine_client)
    terminal.shows("Services (", timeout=60)  # read (the first run may install into .venv)
    wait_for(lambda: terminal.screen().count("Services (") == 2, interval=0.05)
    terminal.shows("d Deploy")
    screen = terminal.screen()
    assert DEV_PROJECT_NAME in screen and PROD_PROJECT_NAME in screen
    assert "1 dev" in screen and "2 PROD" in screen

    terminal.keys("?")
    terminal.shows("Every action works on the focused pane")
    terminal.keys("Escape")
    wait_for(lambda: "Every action works" not in terminal.screen(), interval=0.05)

    terminal.keys("2", "d")
    terminal.shows("Deploy PROD (project ai-agent-platform-prod)?")
    terminal.shows("Type prod to confirm:")
    terminal.keys("Escape")
    terminal.shows("Deploy PROD: cancelled. Nothing was done.")

    terminal.keys("q")
    wait_for(lambda: "stack-tui" not in terminal.screen(), interval=0.05)
    assert platform_containers(engine_client) == before
    assert not (tmp_path / "platform" / "data" / "audit.log").exists()
