"""The one Docker event subscription behind the live panes.

Textual-free: `EngineWatcher.run()` blocks in a thread worker and reports through
callbacks. The engine ANDs repeated `label` filters (two project values match
nothing), so the subscription asks server-side only for container and volume
lifecycle events (healthcheck execs would otherwise wake us every few seconds,
for every container on the host) and the project is matched here. docker-py's
stream has no timeout and simply ends when the daemon goes away: an end or an
error means "engine gone"; we say so, retry with a short capped backoff, and
resubscribe from the last event seen. The caller re-lists on `on_up`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from stack_tui.core import engine
from stack_tui.core.environments import Environment
from stack_tui.core.errors import StackError

log = logging.getLogger(__name__)

LIFECYCLE = (
    "create",
    "start",
    "restart",
    "die",
    "kill",
    "stop",
    "pause",
    "unpause",
    "destroy",
    "health_status",
    "oom",
    "rename",
    "update",
)
#: Seconds between reconnection attempts; capped low so a returning engine is
#: noticed within a second (a failed attempt on a local socket costs nothing).
BACKOFF = (0.1, 0.25, 0.5, 1.0)


class EngineWatcher:
    """Turn engine events into "env X changed", "engine down", "engine up"."""

    def __init__(
        self,
        envs: tuple[Environment, ...],
        on_change: Callable[[str], object],
        on_down: Callable[[str, str], object],
        on_up: Callable[[], object],
        connect: Callable[[], Any] = engine.client,
        unreachable: Callable[[BaseException | None], StackError] = engine.unreachable,
    ) -> None:
        self._projects = {env.project: env.name for env in envs}
        self._volumes = {volume: env.name for env in envs for volume in env.expected_volumes}
        self._on_change, self._on_down, self._on_up = on_change, on_down, on_up
        self._connect = connect
        self._unreachable = unreachable
        self._stopped = threading.Event()
        self._stream: Any = None

    def env_of(self, event: dict[str, Any]) -> str | None:
        """The environment an engine event concerns, or None for anyone else's."""
        actor = event.get("Actor") or {}
        if event.get("Type") == "volume":
            return self._volumes.get(actor.get("ID", ""))
        labels = actor.get("Attributes") or {}
        return self._projects.get(labels.get(engine.PROJECT_LABEL, ""))

    def run(self, since: float | None = None) -> None:
        """Watch until `stop()`, replaying events from `since` (epoch seconds) on. The first
        connection is not reported as a return."""
        resume = None if since is None else f"{since:.9f}"
        was_up: bool | None = None
        attempt = 0
        while not self._stopped.is_set():
            try:
                client = self._connect()
                self._stream = client.events(
                    decode=True,
                    since=resume,
                    filters={"type": ["container", "volume"], "event": list(LIFECYCLE)},
                )
            except Exception as err:  # anything: the engine is not there for us
                log.info("engine event stream not available", exc_info=True)
                if was_up is not False:
                    gone = self._unreachable(err)
                    self._on_down(gone.message, gone.hint)
                    was_up = False
                self._stopped.wait(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            if was_up is False:
                self._on_up()
            was_up, attempt = True, 0
            resume = self._follow(resume)
            client.close()
            if not self._stopped.is_set():
                gone = self._unreachable(None)
                self._on_down(gone.message, gone.hint)
                was_up = False

    def _follow(self, since: str | None) -> str | None:
        """Read the stream until it ends; return where to resume."""
        try:
            if self._stopped.is_set():  # stop() came before the stream existed
                return since
            with contextlib.suppress(Exception):  # a broken stream: same news as an ended one
                for event in self._stream:
                    nanos = event.get("timeNano")
                    if nanos:
                        since = f"{nanos // 1_000_000_000}.{nanos % 1_000_000_000:09d}"
                    env = self.env_of(event)
                    if env is not None:
                        self._on_change(env)
        finally:
            self._stream.close()
        return since

    def stop(self) -> None:
        """Stop from any thread: closing the stream unblocks the reading thread."""
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            stream.close()
