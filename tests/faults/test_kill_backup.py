"""The process running a backup killed at random points: SIGKILL many times, and Ctrl-C."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from faults.common import (
    Tmux,
    backup_checksums,
    cli_code,
    fake_backup,
    partials,
    platform_code,
    spawn,
    wait_no_dump,
)
from stack_tui.core import audit, backups, locks
from stack_tui.core.environments import Platform
from support import skip_or_fail, wait_for

pytestmark = pytest.mark.engine

ROUNDS = int(os.environ.get("STT_KILL_ROUNDS", "10"))  # more: STT_KILL_ROUNDS=50
#: No pruning during the rounds: every backup published by an earlier round must stay.
KEEP_ALL = ["dev", "backup", "--keep", "1000"]


def test_sigkill_at_random_points_of_a_backup_leaves_only_good_backups(big: Platform) -> None:
    seed = int(os.environ.get("STT_FAULT_SEED", str(random.randrange(1 << 30))))  # noqa: S311
    rng = random.Random(seed)  # noqa: S311
    directory = big.backups_dir
    code = cli_code(big, KEEP_ALL)

    started = time.monotonic()
    proc = spawn(code)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    whole = time.monotonic() - started  # process start to exit: the window the kills land in
    known = backup_checksums(directory)
    assert len(known) == 1

    # One kill in each of ROUNDS equal slices of the run, at a random point of its slice, in a
    # random order: start-up, the dump, verification, publishing and pruning all get hit.
    window = whole * 1.1
    slices = list(range(ROUNDS))
    rng.shuffle(slices)
    seen: Counter[str] = Counter()
    for round_, slice_ in enumerate(slices):
        delay = (slice_ + rng.random()) * window / ROUNDS
        proc = spawn(code)
        time.sleep(delay)  # the random point of the fault: the delay itself is the test input
        proc.kill()
        proc.wait()
        where = f"round {round_}, SIGKILL after {delay:.2f} s (seed {seed})"

        wait_no_dump(big)  # pg_dump does not outlive the process that asked for it
        assert locks.holder(big.locks_dir, big.dev_project) is None, where
        now = backup_checksums(directory)
        for name, digest in known.items():
            assert now.get(name) == digest, f"{where}: older backup {name} changed or vanished"
        for name in set(now) - set(known):
            check = backups.verify(directory / name)
            assert check.ok, f"{where}: {name} carries a backup's name but {check.reason}"
        listed = {info.name for info in backups.list_backups(directory)}
        assert listed == set(now), f"{where}: the listing shows {listed - set(now)}"
        left = partials(directory)
        # A stale temporary file is removed by the next backup before it writes its own.
        assert len(left) <= 1, f"{where}: temporary files pile up: {left}"
        seen["published" if set(now) - set(known) else "partial left" if left else "no file"] += 1
        known = now

    proc = spawn(code)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert partials(directory) == [], "the next backup must clean up what killed ones left"
    assert all(backups.verify(directory / name).ok for name in backup_checksums(directory))
    print(f"\nSIGKILL rounds (seed {seed}, backup {whole:.2f} s): {dict(seen)}")


@pytest.mark.parametrize("round_", range(3))
def test_ctrl_c_during_a_backup_leaves_no_partial_and_audits_it(big: Platform, round_: int) -> None:
    directory = big.backups_dir
    code = cli_code(big, ["dev", "backup"])
    proc = spawn(code)
    wait_for(
        lambda: locks.holder(big.locks_dir, big.dev_project) is not None, timeout=30, interval=0.02
    )
    time.sleep(random.uniform(0, 1.0))  # noqa: S311  # somewhere in the dump (or right after it)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    text = out.decode() + err.decode()
    assert "Traceback" not in text
    entry = audit.read(big.audit_log)[-1]
    assert entry["operation"] == "backup" and entry["env"] == "dev"
    if proc.returncode == 0:  # the signal came after the backup was complete
        assert entry["result"] == "ok"
        return
    assert proc.returncode == 130, text
    assert "interrupted (Ctrl-C or SIGTERM)" in text, text
    print(f"\nctrl-c: exit 130, audit {entry['result']}, no partial, lock free")
    assert entry["result"] == "interrupted"
    assert partials(directory) == []
    assert backup_checksums(directory) == {}
    assert locks.holder(big.locks_dir, big.dev_project) is None
    wait_no_dump(big)


def test_sigkill_of_the_tui_during_its_backup_leaves_only_good_backups(
    big: Platform,
    tmp_path: Path,
) -> None:
    """The real TUI in a terminal: b, confirm, then SIGKILL at a random point of the dump."""
    if shutil.which("tmux") is None:
        skip_or_fail("needs tmux")
    rng = random.Random()  # noqa: S311
    script = tmp_path / "tui.py"
    script.write_text(
        platform_code(big) + "from stack_tui.tui import run\nsys.exit(run(platform=p))\n"
    )
    directory = big.backups_dir
    fake_backup(directory, "dev", datetime(2024, 1, 1))
    known = backup_checksums(directory)
    tmux = Tmux(f"stt-kill-{uuid.uuid4().hex[:8]}")
    try:
        for round_ in range(3):
            session = f"tui{round_}"
            tmux.start(session, [sys.executable, str(script)], env={"TERM": "xterm-256color"})
            pid = tmux.pid(session)
            # Ready: the panes are populated (the operation line may show the last kill as died).
            wait_for(lambda s=session: "Services (" in tmux.screen(s), 30)
            tmux.keys(session, "1", "b")
            wait_for(lambda s=session: "Back up dev" in tmux.screen(s), 10)
            tmux.keys(session, "Tab", "Enter")  # Cancel has the focus; the next button confirms
            wait_for(
                lambda p=pid: getattr(locks.holder(big.locks_dir, big.dev_project), "pid", 0) == p,
                15,
                interval=0.02,
            )
            time.sleep(rng.uniform(0, 1.5))  # the random point of the fault
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda s=session: s not in tmux.sessions(), 10)
            wait_no_dump(big)
            assert locks.holder(big.locks_dir, big.dev_project) is None
            now = backup_checksums(directory)
            assert all(now.get(name) == digest for name, digest in known.items())
            assert all(backups.verify(directory / name).ok for name in set(now) - set(known))
            assert len(partials(directory)) <= 1
            print(
                f"\nTUI SIGKILL round {round_}: new backups {sorted(set(now) - set(known))}, "
                f"partials {partials(directory)}"
            )
            known = now
    finally:
        tmux.kill()
