"""Resource use per service, from the engine's stats stream (one sample a second each).

Nothing samples unless asked: an `EnvSampler` opens one stream per running container of
its project when started and closes every one when stopped, so a TUI with resource use off
costs the engine and the terminal nothing. Each service keeps the last minute of samples
(`History`, a ring buffer) for the sparklines. Textual-free: each stream blocks in a thread
of its own (daemon; it ends when its socket is closed), and samples are handed to
`on_sample` from those threads. Not Textual's thread workers: those share asyncio's default
executor (min(32, CPUs + 4) threads: 6 on a 2-core host), and a stream per container would
hold every slot, leaving the status reads queued behind them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from stack_tui.core import engine
from stack_tui.core.environments import Environment
from stack_tui.core.errors import StackError

log = logging.getLogger(__name__)

#: One sample a second: a minute of them.
HISTORY = 60


@dataclass(frozen=True)
class Sample:
    at: float
    #: % of one core, as `docker stats` computes it; None for a stream's first sample (the
    #: engine sends no previous reading to compare with).
    cpu: float | None
    #: Bytes in use without the page cache (as `docker stats`); None when not reported.
    memory: int | None
    memory_limit: int | None


class Unavailable(StackError):
    """The engine reports no resource use (no cgroup controllers, an engine without stats)."""


def parse(raw: dict[str, Any], at: float | None = None) -> Sample:
    """One stats-stream object as a Sample, the way the docker CLI computes it; Unavailable
    when the engine reported neither CPU nor memory."""
    cpu_stats, before = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    usage_now, usage_before = cpu_stats.get("cpu_usage") or {}, before.get("cpu_usage") or {}
    total: int | None = usage_now.get("total_usage")
    system: int | None = cpu_stats.get("system_cpu_usage")
    previous_total: int | None = usage_before.get("total_usage")
    previous_system: int | None = before.get("system_cpu_usage")
    cpu: float | None = None
    if (
        total is not None
        and system is not None
        and previous_total is not None
        and previous_system is not None
        and system > previous_system
    ):
        cores = cpu_stats.get("online_cpus") or len(usage_now.get("percpu_usage") or [None])
        cpu = max(0.0, (total - previous_total) / (system - previous_system) * cores * 100)
    memory_stats = raw.get("memory_stats") or {}
    usage = memory_stats.get("usage")
    memory: int | None = None
    if usage is not None:
        details = memory_stats.get("stats") or {}
        cache = details.get("total_inactive_file", details.get("inactive_file", 0))
        memory = usage - cache if cache < usage else usage
    if memory is None and total is None:
        raise Unavailable(
            "The engine reports no CPU or memory use for this container.",
            "Its cgroup controllers may be unavailable (rootless Docker without cgroup v2 "
            "delegation, or a kernel without memory accounting); docker stats shows the same.",
        )
    return Sample(time.time() if at is None else at, cpu, memory, memory_stats.get("limit"))


@dataclass
class History:
    """A service's last minute of samples."""

    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    @property
    def last(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def cpu(self) -> list[float]:
        return [s.cpu for s in self.samples if s.cpu is not None]

    def memory(self) -> list[float]:
        return [float(s.memory) for s in self.samples if s.memory is not None]


class Stream(Protocol):
    def __iter__(self) -> Any: ...

    def close(self) -> None: ...


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError  # the loop always returns


def describe(sample: Sample | None) -> tuple[str, str]:
    """(CPU, memory) as a pane shows them: "0.3 %", "12.4 MiB"; "…" until known."""
    if sample is None:
        return ("…", "…")
    cpu = "…" if sample.cpu is None else f"{sample.cpu:.1f} %"
    memory = "-" if sample.memory is None else human_bytes(sample.memory)
    return (cpu, memory)


class EnvSampler:
    """One environment's streams: `sync()` opens one for each running container not yet
    followed and closes those of containers gone; `stop()` closes them all."""

    def __init__(
        self,
        env: Environment,
        client: Callable[[], Any],
        on_sample: Callable[[str, Sample], None],
        on_problem: Callable[[str], None],
        open_stream: Callable[[Any, str], Stream] = engine.StatsStream,
    ) -> None:
        self.env = env
        self._client = client
        self._on_sample, self._on_problem = on_sample, on_problem
        self._open = open_stream
        self.histories: dict[str, History] = {}
        self._streams: dict[str, Stream] = {}
        self._opening: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def sync(self) -> None:
        """Blocking (lists the project's containers): call it from a thread."""
        try:
            client = self._client()
            running = {
                c.id: c.labels.get(engine.SERVICE_LABEL, c.name)
                for c in engine.project_containers(client, self.env.project)
                if c.status == "running"
            }
        except StackError as err:
            self._on_problem(err.message)
            return
        with self._lock:
            if self._stopped:
                return
            for gone in set(self._streams) - set(running):
                self._streams.pop(gone).close()
            for service in set(self.histories) - set(running.values()):
                del self.histories[service]
            new = [
                (cid, service)
                for cid, service in running.items()
                if cid not in self._streams and cid not in self._opening
            ]
            self._opening.update(cid for cid, _ in new)
        for cid, service in new:  # an open waits for the engine's first sample: in its thread
            threading.Thread(
                target=partial(self._run, client, cid, service),
                name=f"stats-{self.env.name}-{service}",
                daemon=True,
            ).start()

    def _run(self, client: Any, cid: str, service: str) -> None:
        try:
            stream = self._opened(client, cid, service)
        finally:
            with self._lock:
                self._opening.discard(cid)
        if stream is not None:
            self._follow(cid, service, stream)

    def _opened(self, client: Any, cid: str, service: str) -> Stream | None:
        try:
            stream = self._open(client, cid)
        except StackError as err:
            self._on_problem(f"{service}: {err.message}")
            return None
        except Exception as err:  # docker-py's APIError: the engine refused stats
            self._on_problem(f"The engine gives no resource use for {service}: {err}")
            return None
        with self._lock:
            if self._stopped:
                stream.close()
                return None
            self._streams[cid] = stream
            self.histories.setdefault(service, History())
        return stream

    def _follow(self, cid: str, service: str, stream: Stream) -> None:
        for raw in stream:
            try:
                sample = parse(raw)
            except Unavailable as err:
                self._on_problem(f"{service}: {err.message} {err.hint}")
                break
            with self._lock:
                if self._streams.get(cid) is not stream:
                    break
                self.histories.setdefault(service, History()).add(sample)
            self._on_sample(service, sample)
        with self._lock:
            if self._streams.get(cid) is stream:
                del self._streams[cid]
        stream.close()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream.close()
