"""The environment lock: readers (status, the TUI) never make a writer fail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stack_tui.core import locks
from stack_tui.core.errors import LockHeld
from support import wait_for

PROBE = """
import sys, time
from pathlib import Path
from stack_tui.core import locks
directory, deadline = Path(sys.argv[1]), time.time() + float(sys.argv[2])
print("probing", flush=True)
while time.time() < deadline:
    locks.holder(directory, "proj")
"""

HOLD = """
import sys, time
from pathlib import Path
from stack_tui.core import locks
with locks.hold(Path(sys.argv[1]), "proj", "dev", "deploy"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_reader_probing_in_a_loop_never_makes_a_writer_fail(tmp_path: Path) -> None:
    """Two processes, two file descriptors on the lock file: a status reader probing as
    fast as it can and a writer taking the lock again and again. Every take succeeds."""
    with locks.hold(tmp_path, "proj", "dev", "deploy"):
        pass  # the file exists before the reader starts
    reader = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(tmp_path), "20"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "probing\n"
        failures = 0
        for _ in range(3000):
            try:
                with locks.hold(tmp_path, "proj", "dev", "deploy"):
                    pass
            except LockHeld:
                failures += 1
        assert failures == 0, f"{failures} of 3000 lock takes failed while a reader probed"
    finally:
        reader.kill()
        reader.wait()


def test_the_reader_sees_a_holder_in_another_process_and_not_after_it_was_killed(
    tmp_path: Path,
) -> None:
    assert locks.holder(tmp_path, "proj") is None
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        found = locks.holder(tmp_path, "proj")
        assert found is not None and found.pid == proc.pid and found.operation == "deploy"
        try:
            with locks.hold(tmp_path, "proj", "dev", "backup"):
                raise AssertionError("took a lock another process holds")
        except LockHeld as err:
            assert "deploy by" in err.message
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the holder's record is still in the file (SIGKILL: no cleanup), the lock is not
    assert (tmp_path / "proj.lock").read_text()
    wait_for(lambda: locks.holder(tmp_path, "proj") is None, timeout=5, interval=0.01)


def test_the_reader_sees_a_holder_in_its_own_process(tmp_path: Path) -> None:
    with locks.hold(tmp_path, "proj", "dev", "backup") as holder:
        found = locks.holder(tmp_path, "proj")
        assert found == holder and found.pid == os.getpid()
        assert time.time() - found.started < 60
    assert locks.holder(tmp_path, "proj") is None
