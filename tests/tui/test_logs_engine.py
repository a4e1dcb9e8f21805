"""Logs on the real engine: a container labelled as a test platform's dev `agent` wrote
known lines (one with the platform's database password); `./stack logs` and the logs screen
read them through core/logs.py. Also a 10 MB log, with the reader's memory measured
(bench/logs_search.py: 100 MB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import docker
import pytest
from helpers import screen_is, until
from textual.widgets import Static

from stack_tui import cli
from stack_tui.core import engine
from stack_tui.core.environments import Platform
from stack_tui.live.backend import LiveBackend
from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.logs import LogsScreen
from stack_tui.tui.widgets.log_view import LogView
from support import TEST_IMAGES, TEST_SECRETS, destroy, engine_or_skip, make_platform

pytestmark = pytest.mark.engine

KNOWN = [
    "INFO agent starting",
    'level=warn msg="disk almost full"',
    f"ERROR: login failed password={TEST_SECRETS['POSTGRES_PASSWORD']}",
    "GET /api/items 200",
    "INFO agent ready",
]
#: 10 MB of log lines of 100 bytes, then one needle (bench/logs_search.py measures 100 MB).
BIG_LINES = 100_000
NEEDLE = "ERROR needle-5f2c found"


def labelled(client: docker.DockerClient, platform: Platform, service: str, script: str) -> None:
    """A container Compose would know as `service` of the platform's dev project."""
    client.containers.run(
        TEST_IMAGES["AGENT_IMAGE"],
        ["sh", "-c", script],
        detach=True,
        name=f"{platform.dev.project}-{service}-1",
        labels={engine.PROJECT_LABEL: platform.dev.project, engine.SERVICE_LABEL: service},
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    client = engine_or_skip()
    made = make_platform(tmp_path_factory.mktemp("logs"))
    try:
        lines = "; ".join(f"echo '{line}'" for line in KNOWN)
        labelled(client, made, "agent", f"{lines}; echo READY-MARK; exec sleep 600")
        big = f"yes '{'x' * 99}' | head -n {BIG_LINES}; echo '{NEEDLE}'"  # then exits
        labelled(client, made, "qdrant", big)
        agent = client.containers.get(f"{made.dev.project}-agent-1")
        for chunk in agent.logs(stream=True, follow=True):
            if b"READY-MARK" in chunk:
                break
        yield made
    finally:
        destroy(made)


def test_cli_greps_masks_and_refuses_unknown_services(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["logs", "--dev", "agent", "--grep", "items"], platform=platform) == 0
    assert capsys.readouterr().out == "GET /api/items 200\n"

    assert cli.main(["dev", "logs", "agent", "--since", "1h", "-t"], platform=platform) == 0
    out = capsys.readouterr().out
    assert "ERROR: login failed password=***" in out
    assert TEST_SECRETS["POSTGRES_PASSWORD"] not in out
    assert len(out.splitlines()) == len(KNOWN) + 1 and out[:2] == "20"  # local times

    assert cli.main(["logs", "--dev", "nosuch"], platform=platform) == cli.EXIT_REFUSED
    said = capsys.readouterr().err
    assert "has no service 'nosuch'" in said and "agent, openwebui, postgres, qdrant" in said

    assert cli.main(["logs", "--dev", "postgres"], platform=platform) == cli.EXIT_REFUSED
    assert "postgres has no container" in capsys.readouterr().err

    assert cli.main(["logs", "--dev", "agent", "--grep", "("], platform=platform) == 3
    assert "Not a regular expression" in capsys.readouterr().err


async def test_logs_screen_on_the_engine_searches_filters_and_masks(platform: Platform) -> None:
    app = StackApp(LiveBackend(platform))
    async with app.run_test(size=(120, 30)) as pilot:
        app.push_screen(LogsScreen(app.backend, platform.dev, ["agent"]))
        await screen_is(pilot, LogsScreen)
        await until(pilot, lambda: app.screen.query(LogView), what="the screen composed")
        view = app.screen.query_one(LogView)
        await until(pilot, lambda: len(view.lines) == len(KNOWN) + 1, 20, "the agent's lines")
        assert not any(TEST_SECRETS["POSTGRES_PASSWORD"] in line.text for line in view.lines)
        await pilot.press("slash", *"ITEMS|Ready", "enter")  # capitals: case-sensitive
        assert view.matches() == []
        await pilot.press("slash", *(["backspace"] * 11), *"items|agent ready", "enter")
        assert view.matches() == [3, 4] and view.current == 4
        await pilot.press("N")
        assert view.current == 3
        await pilot.press("f")
        await until(pilot, lambda: len(view.lines) == 2, 20, "only the matching lines")
        await pilot.press("f", "e")
        await until(pilot, lambda: [line.text[:5] for line in view.lines] == ["ERROR"], 20)
        await pilot.press("e", "e", "e", "s")  # level off, since 10 minutes: all of them
        await until(pilot, lambda: len(view.lines) == len(KNOWN) + 1, 20, "since 10m")
        title = app.screen.query_one("#logs-title", Static)
        await until(pilot, lambda: "since 10m" in str(title.render()))


def test_a_big_log_searched_in_bounded_memory(platform: Platform) -> None:
    """In a fresh process (its peak RSS is the reader's): the whole log spilled, then searched.
    The container has exited: a stopped service's log is read as well."""
    docker.from_env().containers.get(f"{platform.dev.project}-qdrant-1").wait(timeout=300)
    script = textwrap.dedent(
        f"""
        import json, time
        def high_water_kb():  # this process's own peak: ru_maxrss keeps the parent's over exec
            with open("/proc/self/status") as status:
                line = next(l for l in status if l.startswith("VmHWM:"))
            return int(line.split()[1])
        import docker  # imported before the baseline: the reading is measured, not the imports
        from stack_tui.core import logs
        from stack_tui.core.environments import Platform
        from pathlib import Path
        env = Platform(
            root=Path({str(platform.root)!r}),
            dev_project={platform.dev.project!r},
            prod_project={platform.prod.project!r},
            data_dir=Path({str(platform.data)!r}),
            env_file=Path({str(platform.dotenv)!r}),
            compose_dir=Path({str(platform.compose)!r}),
        ).dev
        before = high_water_kb()
        session = logs.LogSession(logs.sources_for(env, ["qdrant"]), on_lines=lambda lines: None)
        tail = session.start()
        while session.reading:
            time.sleep(0.1)
        started = time.monotonic()
        found = session.search(logs.LogFilter(pattern=logs.compile_pattern("needle-5f2c")))
        seconds = time.monotonic() - started
        spilled = session.spilled_bytes
        session.close()
        print(json.dumps({{
            "tail": [l.text for l in tail[-1:]],
            "found": [l.text for l in found.lines],
            "spilled": spilled, "seconds": seconds, "errors": session.errors,
            "peak_kb": high_water_kb(),
            "growth_kb": high_water_kb() - before}}))
        """
    )
    # Not under pytest-cov's subprocess coverage: its tracer's memory is not the reader's.
    plain = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env=plain,
    )
    measured = json.loads(done.stdout)
    assert measured["errors"] == ["qdrant stopped: no more lines will come"]  # it exited
    assert measured["tail"] == [NEEDLE] and measured["found"] == [NEEDLE]
    assert measured["spilled"] >= BIG_LINES * 100
    # The reader's own buffers (4 MB scan chunks, the 5,000-line tail, the engine stream): a
    # fixed budget. That it stays fixed as the log grows is bench/logs_search.py's 100 MB run
    # (a log large enough to show it takes dockerd minutes to serve).
    assert measured["growth_kb"] < 32_000, measured
    assert measured["peak_kb"] < 120_000, measured
    seconds, growth = measured["seconds"], measured["growth_kb"]
    print(f"{BIG_LINES // 10_000} MB: search {seconds:.2f} s, growth {growth} KB")
