"""An upload to restic saves a snapshot only of a whole stream, whoever is SIGKILLed
half-way: real restic, a local repository, real processes killed (no engine needed).

restic saves a snapshot as soon as its `--stdin` ends; these tests kill the
uploader or the guard with part of the stream sent, then look at the repository.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from offsite.conftest import descendants, password_file
from stack_tui.core import offsite
from support import REPO, skip_or_fail

LINE = b"INSERT INTO t VALUES (1);\n"
#: 4 MB, more than restic's input pipe holds (offsite.PIPE_SIZE): once written, restic
#: runs and has read some of it.
HALF = LINE * 160_000
TAGS = {"env": "dev", "stamp": "20260101_020000", "reason": "manual"}


@pytest.fixture
def config(tmp_path: Path) -> offsite.Config:
    if shutil.which("restic") is None:
        skip_or_fail("needs restic: scripts/test installs it (apt-get install restic)")
    made = offsite.Config(str(tmp_path / "repo"), password_file(tmp_path), None, None)
    offsite.run(made, ["init", "--repository-version", offsite.REPOSITORY_VERSION])
    return made


def listed(config: offsite.Config) -> list[dict]:  # type: ignore[type-arg]
    """Every snapshot in the repository, ours or not (no lock: a dead restic may hold one)."""
    return json.loads(offsite.run(config, ["snapshots", "--json", "--no-lock"]).stdout) or []


def await_exit(*pids: int) -> None:
    """Block until each process has exited (its pidfd becomes readable): no polling."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, f"process {pid} still runs after 60 s"
        finally:
            os.close(fd)


def restic_under(guard: int) -> int:
    [restic] = descendants(guard)
    assert b"restic" in Path(f"/proc/{restic}/cmdline").read_bytes()
    return restic


def test_a_whole_stream_is_one_restic_run_tagged_complete(config: offsite.Config) -> None:
    upload = offsite.Upload(config, "dev", datetime(2026, 1, 1, 2), TAGS)
    upload.write(HALF)
    upload.write(HALF)
    snapshot = upload.commit()
    [saved] = listed(config)
    assert saved["id"].startswith(snapshot)
    assert "original" not in saved, "no second restic run rewrote the snapshot (restic tag)"
    assert sorted(saved["tags"]) == sorted([*(f"{k}={v}" for k, v in TAGS.items()), "verified=ok"])
    assert [s.stamp for s in offsite.snapshots(config)] == [TAGS["stamp"]]
    dumped = subprocess.run(
        [*offsite._base_command(config), "dump", snapshot, "/stack-tui/dev.sql"],
        capture_output=True,
        check=True,
    )
    assert dumped.stdout == HALF + HALF


def test_uploader_sigkilled_mid_stream_leaves_no_snapshot(config: offsite.Config) -> None:
    code = textwrap.dedent(f"""
        import sys
        from datetime import datetime
        from pathlib import Path
        from stack_tui.core import offsite
        config = offsite.Config({config.repository!r}, Path({str(config.password_file)!r}),
                                None, None)
        upload = offsite.Upload(config, "dev", datetime(2026, 1, 1, 2), {TAGS!r})
        upload.write({LINE!r} * 160_000)
        print(upload.guard.pid, flush=True)
        sys.stdin.read()  # half the stream sent; the test kills us here
    """)
    uploader = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert uploader.stdout is not None
    try:
        guard = int(uploader.stdout.readline())
        restic = restic_under(guard)
    finally:
        uploader.send_signal(signal.SIGKILL)
        uploader.wait()
        assert uploader.stdin is not None and uploader.stdout is not None
        uploader.stdin.close()
        uploader.stdout.close()
    await_exit(guard, restic)
    assert listed(config) == [], "restic was stopped before its input ended: nothing saved"

    offsite.remove_stale_locks(config)  # what the next push does first
    again = offsite.Upload(config, "dev", datetime(2026, 1, 1, 2), TAGS)
    again.write(HALF)
    again.commit()
    assert [s.stamp for s in offsite.snapshots(config)] == [TAGS["stamp"]]


def test_guard_sigkilled_mid_stream_stops_restic_and_the_uploader_hears(
    config: offsite.Config,
) -> None:
    upload = offsite.Upload(config, "dev", datetime(2026, 1, 1, 2), TAGS)
    try:
        upload.write(HALF)
        restic = restic_under(upload.guard.pid)
        os.kill(upload.guard.pid, signal.SIGKILL)
        await_exit(restic)  # PR_SET_PDEATHSIG: restic dies with its guard
        with pytest.raises(offsite.OffsiteError, match=r"killed \(signal 9\) before"):
            upload.write(HALF)
    finally:
        upload.abort()
    assert listed(config) == []
