"""The engine going away and coming back, without restarting the shared daemon: the TUI
talks to it through a socket proxy (DOCKER_HOST) that the test stops and starts."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import until

from stack_tui.core.environments import Platform
from stack_tui.live.backend import LiveBackend
from stack_tui.tui.app import StackApp
from support import skip_or_fail

pytestmark = pytest.mark.engine
ENGINE = "/var/run/docker.sock"


class SocketProxy:
    """A unix socket forwarding every connection to the engine's; stop() cuts them all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(ENGINE)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def _stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        self.path.unlink(missing_ok=True)

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)


@pytest.fixture
def proxy(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SocketProxy]:
    if not Path(ENGINE).exists():
        skip_or_fail(f"needs the engine's socket at {ENGINE}")
    made = SocketProxy(tmp_path / "engine.sock")
    made.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{made.path}")
    try:
        yield made
    finally:
        with contextlib.suppress(AssertionError, OSError):
            made.stop()
        made.loop.call_soon_threadsafe(made.loop.stop)


async def test_both_panes_say_the_engine_is_gone_at_once_and_recover_by_themselves(
    platform: Platform, proxy: SocketProxy
) -> None:
    app = StackApp(LiveBackend(platform))
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        await until(
            pilot,
            lambda: (
                len(main.session.statuses) == 2
                and not any(status.error for status in main.session.statuses.values())
            ),
            what="both panes read through the proxy",
        )
        proxy.stop()
        # Bounds here are generous (a loaded CI host): the claim is that the panes hear it
        # from the event stream and recover by themselves, not how fast (that is bench/).
        await until(pilot, lambda: main.session.engine_down is not None, 10, "engine gone")
        for env in ("dev", "prod"):
            assert main.pane(env).has_class("-problem")
        assert "unreachable" in (main.session.engine_down or ("", ""))[0]

        proxy.start()
        back = time.monotonic()
        await until(
            pilot,
            lambda: (
                main.session.engine_down is None
                and all(
                    not status.error and status.taken > back
                    for status in main.session.statuses.values()
                )
            ),
            10,
            "both panes re-read after the engine's return",
        )
        for env in ("dev", "prod"):
            assert not main.pane(env).has_class("-problem")
