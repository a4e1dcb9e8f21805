"""The live subscriptions without an engine: a scripted docker client, a temp data dir."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakes
import requests

from stack_tui.core.environments import Platform
from stack_tui.live.datawatch import OFFSITE_DIR, DataWatcher
from stack_tui.live.watcher import EngineWatcher
from stack_tui.ops import offsite

WAIT = 5.0


class Stream:
    """Like docker-py's CancellableStream: iterate events; close() ends a blocked read."""

    def __init__(self, events: list[dict[str, Any]], then_block: bool) -> None:
        self.events = events
        self.then_block = then_block
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.events
        if self.then_block:
            self.closed.wait()

    def close(self) -> None:
        self.closed.set()


class Client:
    def __init__(self, stream: Stream, calls: list[dict[str, Any]]) -> None:
        self.stream, self.calls = stream, calls

    def events(self, **kwargs: Any) -> Stream:
        self.calls.append(kwargs)
        return self.stream

    def close(self) -> None:
        pass


def container(project: str, action: str, nanos: int) -> dict[str, Any]:
    return {
        "Type": "container",
        "Action": action,
        "timeNano": nanos,
        "Actor": {"ID": "c1", "Attributes": {"com.docker.compose.project": project}},
    }


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, *what: str) -> None:
        with self.changed:
            self.log.append(" ".join(what))
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[str]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.log) >= count, WAIT), self.log
            return list(self.log)

    def until(self, expected: set[str]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: expected <= set(self.log), WAIT), self.log
            self.log.clear()

    def next(self) -> set[str]:
        """What is reported next (one inotify read may report several), then forget it."""
        with self.changed:
            assert self.changed.wait_for(lambda: bool(self.log), WAIT), "nothing reported"
            news = set(self.log)
            self.log.clear()
            return news


def test_one_subscription_matches_both_projects_and_survives_an_engine_restart() -> None:
    platform = fakes.make_platform()
    dev, prod = platform.dev, platform.prod
    calls: list[dict[str, Any]] = []
    first = Stream(
        [
            container(dev.project, "die", 1_700_000_000_000000001),
            container("someone-else", "start", 1_700_000_000_000000002),
            {
                "Type": "volume",
                "Action": "destroy",
                "timeNano": 1_700_000_000_000000003,
                "Actor": {"ID": prod.postgres_volume, "Attributes": {"driver": "local"}},
            },
        ],
        then_block=False,
    )  # the daemon went away: the stream just ends
    last = Stream([container(prod.project, "start", 1_700_000_001_000000000)], then_block=True)
    script: list[Any] = [
        Client(first, calls),
        requests.exceptions.ConnectionError("refused"),
        Client(last, calls),
    ]

    def connect() -> Client:
        step = script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step  # type: ignore[no-any-return]

    seen = Recorder()
    watcher = EngineWatcher(
        (dev, prod),
        on_change=lambda env: seen("change", env),
        on_down=lambda error, hint: seen("down"),
        on_up=lambda: seen("up"),
        connect=connect,
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        assert seen.wait_for(5) == ["change dev", "change prod", "down", "up", "change prod"]
    finally:
        watcher.stop()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert calls[0]["since"] is None
    assert calls[1]["since"] == "1700000000.000000003"  # resumes after the last event seen
    assert calls[0]["filters"]["type"] == ["container", "volume"]
    assert "exec_start" not in calls[0]["filters"]["event"]  # healthchecks never wake us


def test_no_engine_at_start_is_reported_once_then_the_return() -> None:
    platform = fakes.make_platform()
    stream = Stream([], then_block=True)
    attempts: Iterator[OSError | Client] = iter(
        [OSError("no socket"), OSError("no socket"), Client(stream, [])]
    )

    def connect() -> Client:
        step = next(attempts)
        if isinstance(step, Exception):
            raise step
        return step

    seen = Recorder()
    watcher = EngineWatcher(
        (platform.dev, platform.prod),
        on_change=seen,
        on_down=lambda error, hint: seen("down", error),
        on_up=lambda: seen("up"),
        connect=connect,
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        log = seen.wait_for(2)
    finally:
        watcher.stop()
        thread.join(WAIT)
    assert log[0].startswith("down The Docker engine at") and log[1] == "up"
    assert not thread.is_alive()


def test_lock_and_backup_files_of_any_process_are_noticed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    platform = Platform(root=fakes.REPO, data_dir=data, env_file=tmp_path / ".env")
    (data / "locks").mkdir(parents=True)
    lock = data / "locks" / f"{platform.dev.project}.lock"
    seen = Recorder()
    watcher = DataWatcher(platform, on_change=seen)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        while "dev" not in seen.log:  # until the watches are in place (the thread started)
            lock.write_text("{}")
            with seen.changed:
                seen.changed.wait(0.1)
        (data / "backups").mkdir()  # created after the start: watched from then on
        seen.until({"dev", "prod"})  # (absorbs the lock writes' late reports)
        partial = data / "backups" / ".prod_20260223_030000.sql.gz.partial"
        partial.write_bytes(b"x" * 10)  # a dump being written: not news yet
        os.rename(partial, data / "backups" / "prod_20260223_030000.sql.gz")
        assert seen.next() == {"prod"}
        (data / "backups" / "notes.txt").write_text("unrelated")
        (data / "backups" / "dev_20260223_030000.sql.gz").write_bytes(b"y")
        assert seen.next() == {"dev"}  # the unrelated file said nothing
    finally:
        watcher.stop()
        thread.join(WAIT)
    assert not thread.is_alive()


def test_another_process_recording_a_copy_is_noticed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    platform = Platform(root=fakes.REPO, data_dir=data, env_file=tmp_path / ".env")
    (data / "locks").mkdir(parents=True)
    lock = data / "locks" / f"{platform.dev.project}.lock"
    seen = Recorder()
    watcher = DataWatcher(platform, on_change=seen)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        while "dev" not in seen.log:  # until the watches are in place (the thread started)
            lock.write_text("{}")
            with seen.changed:
                seen.changed.wait(0.1)
        offsite._record(platform, platform.prod, ok=True, detail="1 uploaded")
        seen.until({"prod"})  # data/offsite/ created after the start: watched from then on
        offsite._record(platform, platform.dev, ok=False, detail="unreachable")
        seen.until({"dev"})  # (prod's record may be reported twice: its write, its rename)
        assert (data / OFFSITE_DIR / "dev.json").is_file()
    finally:
        watcher.stop()
        thread.join(WAIT)
    assert not thread.is_alive()
