"""The remote environment's engine lock and audit trail, as two operator machines (two data
directories) see them: the lock taken on an engine with none of the environment's images, a
scheduled backup waiting for another machine's lock (and giving up past its bound), and each
machine's operations readable from the other through the copy kept on the engine's host."""

from __future__ import annotations

import dataclasses
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from remote.conftest import RemoteEngine
from stack_tui import cli
from stack_tui.core import engine_audit, engine_lock, lock_image, locks
from stack_tui.core.environments import Platform
from stack_tui.core.errors import LockHeld
from stack_tui.core.prepared import prepare
from stack_tui.ops.backup import backup
from stack_tui.ops.events import Caution, OutputLine
from support import drive, result_of

pytestmark = pytest.mark.engine
#: Holders are live processes (a lock of this machine whose pid is gone is stale): this
#: one, its holds standing for other operators'.
PID = os.getpid()


@pytest.fixture(scope="module")
def other_machine(split: Platform, remote_engine: RemoteEngine) -> Iterator[Platform]:
    """Operator B: the same environments and settings, its own data directory (its own
    flocks and audit.log), as on another machine. The trail's volume is removed afterwards."""
    data = split.data.parent / "operator-b-data"
    for sub in ("backups", "logs", "locks"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    yield dataclasses.replace(split, data_dir=data)
    there = remote_engine.client()
    for volume in there.volumes.list(filters={"label": engine_audit.VOLUME_LABEL}):
        volume.remove(force=True)


@dataclasses.dataclass
class Held:
    holder: locks.Holder
    release: threading.Event


@pytest.fixture(scope="module")
def held_elsewhere(split: Platform) -> Iterator[Held]:
    """Operator C's deploy holding prod's engine lock until released. A thread of this process
    (the engine lock knows no processes, and a process start with its SSH tunnel costs
    seconds; test_remote_engine.py has another process, SIGKILLed). One for the module: the
    test of the wait releases it."""
    held = Held(
        locks.Holder("carol", "10.0.0.7", PID, "deploy", "prod", time.time()), threading.Event()
    )
    taken: queue.Queue[BaseException | None] = queue.Queue()

    def hold() -> None:
        try:
            with engine_lock.hold(prepare(split.prod), split.prod_project, held.holder):
                taken.put(None)
                held.release.wait()
        except BaseException as err:
            taken.put(err)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        failed = taken.get(timeout=60)
        assert failed is None, failed
        yield held
    finally:
        held.release.set()
        thread.join(60)


def test_the_lock_is_taken_on_an_engine_without_any_of_the_envs_images(
    split: Platform, remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its image is ours, loaded through the API when missing (no registry): the env's
    postgres image plays no part (here: named as one the engine does not have)."""
    there = remote_engine.client()
    for image in there.images.list(name=lock_image.REPOSITORY):
        there.images.remove(image.id, force=True)
    monkeypatch.setenv("POSTGRES_IMAGE", "stack-tui-test/not-on-this-engine:1")
    prepared = prepare(split.prod)
    project = split.prod_project
    mine = locks.Holder("ann", "10.0.0.5", PID, "deploy", "prod", time.time())
    other = locks.Holder("bob", "", PID, "backup", "prod", time.time())
    with engine_lock.hold(prepared, project, mine):
        lock = there.containers.get(engine_lock.container_name(project))
        assert lock.status == "running"
        assert lock.image.tags[0].startswith(f"{lock_image.REPOSITORY}:")
        with pytest.raises(LockHeld) as caught, engine_lock.hold(prepared, project, other):
            pass
    said = caught.value.message
    assert said.startswith("prod is busy on its engine: held by deploy by ann from 10.0.0.5")
    assert f"(pid {PID}) since " in said and f" on host {os.uname().nodename}" in said
    gone = there.events(
        decode=True,
        since=int(time.time()) - 60,
        filters={"container": lock.id, "event": "destroy"},
    )
    next(iter(gone))  # released: the container removed itself
    gone.close()


def test_a_scheduled_backup_gives_up_past_its_bound_naming_the_holder(
    split: Platform,
    held_elsewhere: Held,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Held past STACK_SCHEDULE_LOCK_WAIT: skipped (exit 0, the next run tries again), naming
    who still holds it and how long it waited; no backup written."""
    monkeypatch.setenv("STACK_SCHEDULE_LOCK_WAIT", "1s")
    before = sorted(split.backups_dir.iterdir())
    assert cli.main(["backup", "--scheduled"], platform=split) == cli.EXIT_OK
    said = capsys.readouterr().out
    assert "Skipped the scheduled prod backup: prod is still busy on its engine after 1 s" in said
    assert f"held by deploy by carol from 10.0.0.7 (pid {PID}) since " in said
    assert sorted(split.backups_dir.iterdir()) == before


def test_a_scheduled_backup_waits_for_another_machines_engine_lock(
    split: Platform,
    held_elsewhere: Held,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backup waits (named: who, on which host) and runs once the holder lets go."""
    waiting = threading.Event()
    observe_waits(monkeypatch, waiting.set)
    done: list[Any] = []
    worker = threading.Thread(
        target=lambda: done.extend(drive(backup(split, split.prod, lock_wait=120)))
    )
    worker.start()
    try:
        assert waiting.wait(60), "the backup never waited for the engine lock"
        held_elsewhere.release.set()  # its operation ends: the engine lock goes with it
    finally:
        worker.join(120)
    taken = result_of(done)
    assert taken.ok, (taken.summary, taken.details)
    waited = [e.line for e in done if isinstance(e, OutputLine) and e.source == "lock"]
    assert (
        len(waited) == 1 and f"for the lock (deploy by carol from 10.0.0.7 (pid {PID})" in waited[0]
    )
    assert f"on host {os.uname().nodename} (on prod's engine))" in waited[0], waited


def test_each_machine_reads_the_others_operations_from_the_engines_host(
    split: Platform,
    other_machine: Platform,
    remote_engine: RemoteEngine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """B backs up prod; A's `./stack audit` shows it (kept on the host only, for A). On the
    host: one 0600 file per line in a 0700 directory of the labelled volume."""
    done = result_of(drive(backup(other_machine, other_machine.prod)))
    assert done.ok, (done.summary, done.details)
    assert cli.main(["audit", "-n", "200"], platform=split) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    # An entry's line, then its detail; the newest such detail is B's (A's own backup of the
    # same second, in the test before, has the same file name and summary).
    detail_at = len(lines) - 1 - lines[::-1].index(f"  {done.summary}")
    entry = lines[detail_at - 1]
    assert " backup  ok  " in entry and entry.endswith("  host"), entry
    shown = "\n".join(lines)
    assert f"prod's audit trail, here and on its engine's host {remote_engine.address}" in shown
    b_entries = [
        e for e, where in trail(split).entries if where == "host" and e["detail"] == done.summary
    ]
    assert len(b_entries) == 1 and b_entries[0]["operation"] == "backup"

    trail_dir = host_trail(remote_engine, split)
    assert oct(trail_dir.stat().st_mode & 0o777) == "0o700"
    files = sorted(trail_dir.iterdir())
    assert files and all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files)
    assert len(files) == len({f.read_bytes() for f in files})  # each line once


def test_a_failed_copy_is_said_and_caught_up_by_the_next_operation(
    split: Platform, other_machine: Platform, remote_engine: RemoteEngine
) -> None:
    """The host refuses the write (its trail directory immutable, as a read-only or broken
    disk would): B's backup still succeeds, says the trail is behind before its Result, and
    B's next operation copies both lines; A then reads them."""
    trail_dir = host_trail(remote_engine, split)
    subprocess.run(["chattr", "+i", str(trail_dir)], check=True)
    try:
        first = drive(backup(other_machine, other_machine.prod))
    finally:
        subprocess.run(["chattr", "-i", str(trail_dir)], check=True)
    assert result_of(first).ok
    cautions = [e.message for e in first if isinstance(e, Caution)]
    assert len(cautions) == 1 and isinstance(first[-2], Caution), first[-3:]  # before the Result
    assert "prod's audit trail on its engine's host is" in cautions[0]
    assert "The next operation copies them." in cautions[0]
    summary = result_of(first).summary
    assert not [e for e, _ in trail(split).entries if e["detail"] == summary]

    second = result_of(drive(backup(other_machine, other_machine.prod)))
    assert second.ok
    seen_by_a = {e["detail"]: where for e, where in trail(split).entries}
    assert seen_by_a[summary] == "host" and seen_by_a[second.summary] == "host"


def trail(platform: Platform) -> engine_audit.Trail:
    found = engine_audit.trail(prepare(platform.prod), platform.audit_log)
    assert not found.error, found.error
    return found


def host_trail(remote_engine: RemoteEngine, platform: Platform) -> Path:
    """Where the trail is on the engine's host (the test can look: the same filesystem)."""
    volume = engine_audit.volume_name(platform.prod_project)
    path = remote_engine.root / "data" / "volumes" / volume / "_data" / engine_audit.TRAIL
    assert path.is_dir(), path
    return path


def observe_waits(monkeypatch: pytest.MonkeyPatch, seen: Callable[[], None]) -> None:
    """Be told when the engine lock starts waiting (the runner's own callback still runs)."""
    original = engine_lock.hold

    def observed(*args: Any, waiting: Callable[[str], None] | None = None, **kw: Any) -> Any:
        def told(who: str) -> None:
            seen()
            if waiting is not None:
                waiting(who)

        return original(*args, waiting=told, **kw)

    monkeypatch.setattr(engine_lock, "hold", observed)
