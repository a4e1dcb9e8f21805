"""The Docker daemon restarted under a running TUI.

Restarting the host's dockerd would disturb everything else using it, so the
test runs a second, private dockerd (own data root, exec root, socket, no
bridge, no iptables) with the stand-in agent image loaded into it, points the
TUI's DOCKER_HOST at it, and stops (SIGTERM, as `systemctl restart docker`
does) and starts that one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from textual.widgets import Static

from faults.common import record_notifications, screen_text
from stack_tui.core import engine
from stack_tui.live.backend import LiveBackend
from stack_tui.tui.app import StackApp
from support import TEST_IMAGES, kill_leftovers, make_platform, skip_or_fail, until

pytestmark = pytest.mark.engine

IMAGE = TEST_IMAGES["AGENT_IMAGE"]


class PrivateEngine:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stt-dockerd-", dir="/tmp"))
        self.host = f"unix://{self.root}/docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start dockerd; return the moment it answered."""
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            # Its own network namespace (unshare -n): a second dockerd on the host's network
            # deletes the host engine's docker0 (dockerd removes a default bridge it won't use).
            [
                "unshare",
                "--net",
                "dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "dockerd.pid"),
                "-H",
                self.host,
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
                "--shutdown-timeout",
                "2",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"dockerd died: {(self.root / 'dockerd.log').read_text()}")
            try:
                docker.DockerClient(base_url=self.host, timeout=2).ping()
                return time.monotonic()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> float:
        """SIGTERM dockerd, wait for it to exit; return the moment it was gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic()

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=30)

    def load(self, image: str) -> None:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "load", "-q"],
            stdin=save.stdout,
            check=True,
            capture_output=True,
            env={**os.environ, "DOCKER_HOST": self.host},
        )
        assert save.wait() == 0

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        kill_leftovers(self.root)
        for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
            point = mount.split()[1]
            if point.startswith(str(self.root)):
                subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_engine() -> Iterator[PrivateEngine]:
    if shutil.which("dockerd") is None or shutil.which("unshare") is None or os.geteuid() != 0:
        skip_or_fail("needs dockerd, unshare and root to run a private engine (scripts/test)")
    made = PrivateEngine()
    try:
        made.start()
        made.load(IMAGE)
        yield made
    finally:
        made.destroy()


async def test_engine_restart_is_shown_and_recovered_without_a_restart(
    private_engine: PrivateEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = make_platform(tmp_path)  # nothing of it lives on the host's engine
    agent = private_engine.client().containers.run(
        IMAGE,
        detach=True,
        name=f"{platform.dev_project}-agent-1",
        network_mode="none",
        restart_policy={"Name": "always"},
        labels={engine.PROJECT_LABEL: platform.dev_project, engine.SERVICE_LABEL: "agent"},
    )
    monkeypatch.setenv("DOCKER_HOST", private_engine.host)

    app = StackApp(LiveBackend(platform))
    shown = record_notifications(app)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        pane = main.pane("dev")

        def agent_state() -> str:
            table = pane.services
            return str(table.get_cell("agent", "state")) if "agent" in table.keys else ""

        def says_gone() -> bool:
            problem = str(pane.part("problem", Static).content)
            other = str(main.pane("prod").part("problem", Static).content)
            return "unreachable" in problem and "unreachable" in other

        def recovered() -> bool:
            statuses = main.session.statuses.values()
            return (
                main.session.engine_down is None
                and len(main.session.statuses) == 2
                and not any(s.error for s in statuses)
                and agent_state() == "running"
                and not str(pane.part("problem", Static).content)
            )

        await until(pilot, recovered, 10, "the dev pane shows the agent running")

        gone = await asyncio.to_thread(private_engine.stop)
        # Generous bounds (a loaded CI host): what is tested is that the panes hear it and
        # recover by themselves, without a restart; how fast is for bench/, not a test.
        await until(pilot, says_gone, 10, "both panes say the engine is gone")
        noticed = time.monotonic() - gone
        await pilot.pause()  # let the screen render what the panes hold
        seen_down = screen_text(app)
        assert "UNREACHABLE" in seen_down and "unreachable" in seen_down, seen_down

        back = await asyncio.to_thread(private_engine.start)
        await until(pilot, recovered, 20, "recovered after the engine's return")
        recovery = time.monotonic() - back
        assert app.is_running
        assert agent.id in {c.id for c in private_engine.client().containers.list()}
        assert "UNREACHABLE" not in screen_text(app)
    assert app.return_code in (None, 0)
    print(
        f"\nengine restart: gone shown {noticed:.2f} s after dockerd exited; "
        f"recovered {recovery:.2f} s after it answered again; notifications: {shown}"
    )
    # The engine going away is shown in the panes; it is not a status read "failing" (a
    # daemon shutting down answers some calls with 500 "database not open" first).
    assert not [n for n in shown if "failed" in n.lower()], shown
