"""The history screen's rollback against the real engine: PROD back from agent v3 to v1."""

from __future__ import annotations

import docker
import pytest
from helpers import screen_is
from test_engine import SIZE, confirm_typing, finished, live

from stack_tui.core import engine
from stack_tui.core.environments import Platform
from stack_tui.live.backend import LiveBackend
from stack_tui.ops.deploy import deploy
from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.history import HistoryScreen
from support import drive, result_of

pytestmark = pytest.mark.engine


def deployed(platform: Platform, agent: str) -> None:
    path = platform.dotenv
    path.write_text(
        "".join(
            f"AGENT_IMAGE={agent}\n" if line.startswith("AGENT_IMAGE=") else line
            for line in path.read_text().splitlines(keepends=True)
        )
    )
    done = result_of(drive(deploy(platform, platform.prod, accept_new_volumes=True)))
    assert done.ok, done


async def test_rollback_from_the_history_screen_puts_prod_back_on_v1(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    deployed(platform, "stack-tui-test/agent:1")
    deployed(platform, "stack-tui-test/agent:3")
    app = StackApp(LiveBackend(platform), read_only=False)
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        await pilot.press("2", "h")
        await screen_is(pilot, HistoryScreen)
        await pilot.press("u")
        await confirm_typing(pilot, "prod", "Roll prod back")
        result = await finished(pilot, main, "prod")
        assert result.ok, (result.summary, result.details)
    agent = engine.service_container(engine_client, platform.prod_project, "agent")
    assert agent is not None
    assert agent.attrs["Image"] == engine_client.images.get("stack-tui-test/agent:1").id
