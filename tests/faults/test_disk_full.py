"""The backups directory on a full filesystem (a 2 MB tmpfs mounted for the test)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from faults.common import all_checksums, fake_backup
from stack_tui import cli
from stack_tui.core import audit, locks
from stack_tui.core.environments import Platform
from stack_tui.ops.backup import backup
from support import drive, result_of, skip_or_fail

pytestmark = pytest.mark.engine

OLDER = 6  # more than the 5 kept: a successful backup would prune two of them


@pytest.fixture
def full_disk(big: Platform) -> Iterator[Platform]:
    if os.geteuid() != 0:
        skip_or_fail("mounting a tmpfs needs root")
    target = big.backups_dir
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(target)],
        check=True,
        capture_output=True,
    )
    try:
        yield big
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def test_backup_on_a_full_disk_fails_clearly_and_loses_nothing(
    full_disk: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = full_disk.backups_dir
    start = datetime(2024, 1, 1, 3, 0, 0)
    for n in range(OLDER):
        fake_backup(directory, "dev", start + timedelta(days=n), pad=2000)  # ~140 KB each
    before = all_checksums(directory)
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    assert free < 2 << 20  # the dump (~32 MB compressed) cannot fit

    result = result_of(drive(backup(full_disk, full_disk.dev)))
    assert not result.ok
    assert "full" in result.summary and str(directory) in result.summary
    assert all_checksums(directory) == before, "no partial file, nothing pruned, nothing changed"

    code = cli.main(["dev", "backup"], platform=full_disk)
    output = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    assert "disk holding" in output.out and "is full" in output.out
    assert "Free some space" in output.out
    assert "Traceback" not in output.out + output.err
    assert all_checksums(directory) == before

    assert locks.holder(full_disk.locks_dir, full_disk.dev_project) is None
    entries = audit.read(full_disk.audit_log)
    assert [(e["operation"], e["result"]) for e in entries] == [("backup", "failed")] * 2
    print(f"\ndisk full: {result.summary}")
