"""A shell, psql and resource use on a real engine, through a real terminal (tmux, on a tmux
server of our own), as an operator at 2 a.m. uses them: keys in, the screen read back.

One platform for the module (postgres and qdrant in dev and prod: what a shell, psql and
resource use need); the containers are changed only at the end (bash and sh removed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack_tui.cli import EXIT_REFUSED, main
from stack_tui.core import compose, console, engine, stats
from stack_tui.core.environments import Platform
from stack_tui.core.errors import Refused
from support import (
    REPO,
    destroy,
    engine_or_skip,
    make_platform,
    psql,
    skip_or_fail,
    wait_for,
)

pytestmark = pytest.mark.engine

LAUNCH = REPO / "tests" / "platform_main.py"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    engine_or_skip()
    if shutil.which("tmux") is None:
        skip_or_fail("needs tmux (scripts/test-engine installs it)")
    platform = make_platform(tmp_path_factory.mktemp("console"))
    try:
        for env in (platform.dev, platform.prod):
            compose.run(env, "up", "-d", "--wait", "postgres", "qdrant")
        yield platform
    finally:
        destroy(platform)


class Terminal:
    """The CLI or the TUI in a tmux session on a private server (never the default one)."""

    def __init__(self, platform: Platform, scratch: Path, *args: str, size: str = "120x40"):
        spec = scratch / f"platform-{uuid.uuid4().hex[:6]}.json"
        from platform_main import platform_spec

        platform_spec(platform, spec)
        self.socket = f"stt-console-{uuid.uuid4().hex[:8]}"
        width, height = size.split("x")
        self._tmux(
            "new-session", "-d", "-s", "t", "-x", width, "-y", height,
            "env", "TERM=xterm-256color", sys.executable, str(LAUNCH), str(spec), *args,
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "TMUX": ""},
        ).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def type(self, text: str) -> None:
        """Type a line and Enter (an argument ending in ";" would be tmux's command separator:
        a space after it keeps the SQL as typed)."""
        self._tmux("send-keys", "-t", "t", "-l", text + " " if text.endswith(";") else text)
        self._tmux("send-keys", "-t", "t", "Enter")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "t", key)

    def shows(self, text: str, timeout: float = 30) -> str:
        try:
            wait_for(lambda: text in self.screen(), timeout=timeout, interval=0.05)
        except AssertionError:
            raise AssertionError(f"{text!r} not on screen:\n{self.screen()}") from None
        return self.screen()

    def prompt(self, prompt: str) -> None:
        """Wait for the prompt on the last line, as a person waits before typing."""
        wait_for(
            lambda: (
                [line for line in self.screen().splitlines() if line.strip()][-1].strip() == prompt
            ),
            interval=0.05,
        )

    def pid(self) -> int:
        return int(self._tmux("display-message", "-p", "-t", "t", "#{pane_pid}"))

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def open_tui(platform: Platform, tmp_path: Path, opened: list[Terminal], *args: str) -> Terminal:
    tui = Terminal(platform, tmp_path, *args)
    opened.append(tui)
    tui.shows("Services (2/4 ok)", timeout=60)
    tui.shows("Services (2/5 ok)")
    tui.shows("CHECKS FAILING")  # the checks ran: the screen is past its start-up work
    return tui


def threads(pid: int) -> int:
    """The process's threads: each stats stream is read by a thread of its own, which ends
    when the stream is closed (its socket shut down)."""
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_tui_shell_and_psql_round_trips_on_each_environment(
    deployed: Platform, tmp_path: Path, terminals: list[Terminal]
) -> None:
    tui = open_tui(deployed, tmp_path, terminals)
    tui.keys("Down", "Down", "Down", "s")  # dev's qdrant
    shell = tui.shows("bash in qdrant")
    assert f" dev  {deployed.dev_project}: bash in qdrant" in shell
    assert "PRODUCTION" not in shell
    tui.shows("/ #")  # (capture-pane drops trailing spaces)
    tui.type("echo answer-$((6*7)) from $HOSTNAME")
    tui.shows("answer-42 from")
    tui.prompt("/ #")
    tui.type("exit")
    tui.shows("bash in qdrant ended (exit status 0)")
    assert "/ #" not in tui.shows("Services (2/4 ok)")  # the TUI, redrawn

    tui.keys("p")
    tui.shows(f"{deployed.dev_project}: psql on agent_db_dev as agent")
    tui.shows("agent_db_dev=#")
    tui.type("SELECT 'in:' || current_database() || '/' || current_user;")
    tui.shows("in:agent_db_dev/agent")
    tui.prompt("agent_db_dev=#")
    tui.type("\\q")
    tui.shows("psql on agent_db_dev as agent ended (exit status 0)")

    tui.keys("2", "p")
    prod = tui.shows("agent_db=#")
    assert f" PROD  {deployed.prod_project}: psql on agent_db as agent" in prod
    assert "Every command runs in PRODUCTION." in prod
    tui.type("SELECT 'in:' || current_database() || '/' || current_user;")
    tui.shows("in:agent_db/agent")
    tui.prompt("agent_db=#")
    tui.type("\\q")
    tui.shows("psql on agent_db as agent ended")
    assert "agent_db=#" not in tui.shows("Services (2/5 ok)")


def test_read_only_tui_offers_psql_that_refuses_writes_and_no_shell(
    deployed: Platform, tmp_path: Path, terminals: list[Terminal]
) -> None:
    tui = open_tui(deployed, tmp_path, terminals, "--read-only")
    tui.keys("2", "p")
    tui.shows("psql on agent_db as agent, read-only")
    tui.shows("agent_db=#")
    tui.type("CREATE TABLE written_by_mistake (x int);")
    tui.shows("cannot execute CREATE TABLE in a read-only transaction")
    tui.prompt("agent_db=#")
    tui.type("\\q")
    tui.shows("read-only ended")
    tui.keys("s", "?")
    keys = tui.shows("READ-ONLY: no deploy, backup, restore or shell")
    assert "psql on the focused" in keys
    assert "A shell (bash" not in keys and "Opening a shell" not in keys
    tables = psql(deployed, "prod", "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    assert "written_by_mistake" not in tables.split()


def test_resource_use_streams_only_while_on(
    deployed: Platform, tmp_path: Path, terminals: list[Terminal]
) -> None:
    tui = open_tui(deployed, tmp_path, terminals)
    pid = tui.pid()
    idle = threads(pid)
    tui.keys("t")
    wait_for(
        lambda: tui.screen().count(" %  mem ") == 4,
        timeout=60,
        interval=0.1,
    )  # a CPU figure (a stream's second sample) for each running service of both panes
    on = threads(pid)
    assert on >= idle + 4  # one stream per running container: 2 in each env
    tui.keys("Down", "Down", "s")  # a shell in a running service: the panes are off screen
    tui.shows("exit (or Ctrl-D) ends it")
    wait_for(lambda: threads(pid) <= on - 4, interval=0.1)  # every stream closed
    tui.type("exit")
    tui.shows("ended (exit status 0)")
    wait_for(lambda: tui.screen().count(" %  mem ") == 4, timeout=60, interval=0.1)
    wait_for(lambda: threads(pid) >= idle + 4, interval=0.1)  # the streams again
    back = threads(pid)
    tui.keys("t")
    wait_for(lambda: "Resource use" not in tui.screen(), interval=0.05)
    wait_for(lambda: threads(pid) <= back - 4, interval=0.1)  # off: every stream closed


def test_sampler_follows_the_running_containers_and_closes_every_stream(
    deployed: Platform,
) -> None:
    client = engine.client()
    samples: dict[str, list[stats.Sample]] = {}
    problems: list[str] = []
    sampler = stats.EnvSampler(
        deployed.dev,
        lambda: client,
        on_sample=lambda service, sample: samples.setdefault(service, []).append(sample),
        on_problem=problems.append,
    )
    sampler.sync()
    wait_for(lambda: sampler.open_streams == 2)
    wait_for(lambda: all(len(samples.get(s, [])) >= 2 for s in ("postgres", "qdrant")))
    postgres = sampler.histories["postgres"].last
    assert postgres is not None and postgres.cpu is not None and postgres.memory
    assert 1 * 2**20 < postgres.memory < 2**30  # a real PostgreSQL: some MiB
    threads = [t for t in threading.enumerate() if t.name.startswith("stats-dev-")]
    assert sorted(t.name for t in threads) == ["stats-dev-postgres", "stats-dev-qdrant"]
    sampler.stop()
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()  # closing the socket ended each stream at once
    assert sampler.open_streams == 0 and problems == []


def test_shell_picks_bash_then_sh_and_says_when_there_is_none(
    deployed: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    client = engine.client()
    env = deployed.dev
    assert main(["shell", "--dev", "nosuch"], platform=deployed) == EXIT_REFUSED
    assert "has no service 'nosuch'" in capsys.readouterr().err
    assert main(["shell", "--dev", "agent"], platform=deployed) == EXIT_REFUSED
    assert "it is not deployed" in capsys.readouterr().err
    assert main(["shell", "--dev", "qdrant", "--", "sh", "-c", "exit 7"], platform=deployed) == 7

    assert console.shell(client, env, "postgres").what == "bash in postgres"
    container = console.running_container(client, env, "qdrant")
    container.exec_run(["rm", "/bin/bash"])
    assert console.shell(client, env, "qdrant").what == "sh in qdrant"
    container.exec_run(["rm", "/bin/sh"])
    with pytest.raises(Refused, match="has no shell"):
        console.shell(client, env, "qdrant")
    container.stop(timeout=1)
    with pytest.raises(Refused, match="is not running"):
        console.shell(client, env, "qdrant")
