"""Off-host faults that need a bigger dump: the SFTP server killed mid-upload, a full
disk and a kill while fetching a copy back."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from faults.common import all_checksums, platform_code, start_postgres, table_checksum
from offsite.conftest import Repo, Sshd, set_offsite
from offsite.test_offsite import init, snapshots, snapshots_no_lock, tags, take_backup
from offsite.test_upload_guard import await_exit, restic_under
from stack_tui.core import backups
from stack_tui.core.environments import Platform
from stack_tui.ops import offsite as offsite_ops
from stack_tui.ops.backup import backup
from stack_tui.ops.events import BackupTaken, Caution, Result
from support import drive, psql, result_of, skip_or_fail, wait_for

pytestmark = pytest.mark.engine

#: About 40 MB of SQL, some 20 MB once restic compressed it: several pack files.
BIG = (
    "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS pad "
    "FROM generate_series(1, 600000) g"
)


@pytest.fixture(scope="module")
def bigger(pgdb: Platform) -> Platform:
    start_postgres(pgdb, "dev")
    psql(pgdb, "dev", "DROP TABLE IF EXISTS big; " + BIG)
    return pgdb


def backup_path(result: Result) -> Path:
    assert isinstance(result.payload, BackupTaken), result
    return Path(result.payload.path)


def packs(repo: Repo) -> set[Path]:
    data = repo.path / "data"
    return set(data.glob("*/*")) if data.is_dir() else set()


def test_sshd_killed_during_the_upload(
    bigger: Platform, pg: Platform, sftp_repo: Repo, sshd: Sshd
) -> None:
    init(pg)
    before = packs(sftp_repo)

    def stop_mid_upload() -> None:
        wait_for(lambda: packs(sftp_repo) - before, timeout=120, interval=0.05)
        sshd.stop()

    stopper = threading.Thread(target=stop_mid_upload)
    stopper.start()
    events = drive(backup(pg, pg.dev))
    stopper.join()
    result = result_of(events)
    assert result.ok, "the local backup stands"
    first = backup_path(result)
    assert backups.verify(first).ok
    warning = next(e.message for e in events if isinstance(e, Caution))
    assert "unreachable" in warning and "offsite push --dev" in warning, warning
    assert not offsite_ops.status_line(pg, pg.dev)[0]

    sshd.start()
    assert snapshots(sftp_repo) == [], "no snapshot of a cut upload"
    second = take_backup(pg)
    stamps = [f"dev_{tags(s)['stamp']}.sql.gz" for s in snapshots(sftp_repo)]
    assert stamps == [first.name, second.name], "the next backup uploads both"
    reasons = [tags(s)["reason"] for s in snapshots(sftp_repo)]
    assert reasons == ["unrecorded", "manual"]
    assert offsite_ops.status_line(pg, pg.dev)[0], offsite_ops.status_line(pg, pg.dev)


def test_disk_full_while_fetching(
    bigger: Platform, pg: Platform, local_repo: Repo, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        skip_or_fail("mounting a tmpfs needs root")
    init(pg)
    path = take_backup(pg)
    rows = table_checksum(pg)
    set_offsite(pg, repository=local_repo.url, password_file=str(local_repo.password_file))
    path.rename(tmp_path / path.name)  # moved out of the way before the small disk hides it
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(pg.backups_dir)],
        check=True,
        capture_output=True,
    )
    try:
        before = all_checksums(pg.backups_dir)
        result = result_of(drive(offsite_ops.restore_copy(pg, pg.dev, path.name)))
        assert not result.ok
        assert "full" in result.summary and path.name in result.summary
        assert all_checksums(pg.backups_dir) == before, "no partial file left"
        assert table_checksum(pg) == rows, "the database was not touched"
    finally:
        subprocess.run(["umount", "-l", str(pg.backups_dir)], check=False, capture_output=True)


def test_killed_while_fetching_leaves_nothing_under_a_backup_name(
    bigger: Platform, pg: Platform, local_repo: Repo
) -> None:
    init(pg)
    path = take_backup(pg)
    path.unlink()
    code = platform_code(pg) + textwrap.dedent(f"""
        from stack_tui.ops.offsite import fetch_steps
        for event in fetch_steps(p, {path.name!r}):
            print(event, flush=True)
    """)
    fetcher = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    partial = pg.backups_dir / f".{path.name}{offsite_ops.FETCH_SUFFIX}"
    try:
        wait_for(lambda: partial.exists() and partial.stat().st_size > 0, timeout=60, interval=0.02)
    finally:
        fetcher.kill()
        fetcher.wait()
    assert backups.list_backups(pg.backups_dir) == [], "nothing under a backup's name"
    fetched = drive(offsite_ops.fetch_steps(pg, path.name))
    assert fetched and path.is_file() and backups.verify(path).ok
    assert not partial.exists(), "the stale partial file was removed"


def test_push_killed_mid_upload_leaves_no_copy_that_counts(
    bigger: Platform, pg: Platform, local_repo: Repo
) -> None:
    init(pg)
    set_offsite(pg)  # off while the backup is taken: the copy is the push's
    path = take_backup(pg)
    set_offsite(pg, repository=local_repo.url, password_file=str(local_repo.password_file))
    # The real push, held once 8 MB of the SQL went to restic: the test kills it there.
    code = platform_code(pg) + textwrap.dedent("""
        import sys
        from stack_tui.core import offsite
        from stack_tui.ops.offsite import push
        write = offsite.Upload.write
        def held_midway(upload, data):
            write(upload, data)
            if upload.sent >= 8 << 20:
                print(upload.guard.pid, flush=True)
                sys.stdin.read()
        offsite.Upload.write = held_midway
        for event in push(p, p.dev):
            pass
    """)
    pusher = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert pusher.stdout is not None and pusher.stdin is not None
    try:
        guard = int(pusher.stdout.readline())
        restic = restic_under(guard)
    finally:
        pusher.kill()  # SIGKILL mid-stream: its guard stops restic before the input ends
        pusher.wait()
        pusher.stdin.close()
        pusher.stdout.close()
    await_exit(guard, restic)
    assert snapshots_no_lock(local_repo) == [], "no snapshot of a cut stream"
    assert offsite_ops.copies(pg) == []

    assert result_of(drive(offsite_ops.push(pg, pg.dev))).ok, "sent again"
    raw = snapshots(local_repo)
    assert [tags(s)["stamp"] for s in raw] == [path.name[4:19]]
    assert tags(raw[0])["verified"] == "ok"
    dumped = subprocess.run(
        [
            "restic",
            "--repo",
            str(local_repo.path),
            "--password-file",
            str(local_repo.password_file),
            "dump",
            raw[0]["id"],
            "/stack-tui/dev.sql",
        ],
        capture_output=True,
        check=True,
    )
    assert dumped.stdout == gzip.decompress(path.read_bytes())
