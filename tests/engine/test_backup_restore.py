"""Backup, restore and retention against a real engine and a real PostgreSQL."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import cast

import docker
import pytest

from stack_tui.core import audit, backups, compose, drills, locks
from stack_tui.core.environments import Platform
from stack_tui.ops.backup import backup, list_all
from stack_tui.ops.events import (
    BackupTaken,
    ConfirmationNeeded,
    Event,
    Outcome,
    OutputLine,
    Restored,
)
from stack_tui.ops.restore import restore
from support import drive, postgres_container, psql, result_of, skip_or_fail, wait_for

pytestmark = pytest.mark.engine

NOTES = "SELECT id, body FROM notes ORDER BY id"
OURS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'stack-tui/%'"
#: About 40 MB of SQL: progress events come every 8 MiB, and after the first one
#: a kill has time to land well before the dump could end.
BIG_TABLE = (
    "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS pad "
    "FROM generate_series(1, 600000) g"
)


def deploy_postgres(platform: Platform, *names: str) -> None:
    for name in names:
        compose.run(platform.env(name), "up", "-d", "--wait", "postgres")


def take_backup(platform: Platform, name: str) -> Path:
    done = result_of(drive(backup(platform, platform.env(name))))
    assert done.ok, (done.summary, done.details)
    assert isinstance(done.payload, BackupTaken)
    return Path(done.payload.path)


def files(directory: Path) -> set[str]:
    """The files in `directory`; a backup's sidecars (its rows manifest and drill record)
    count with it, and must not outlive it."""
    names = {p.name for p in directory.iterdir()}
    sidecars = {n for n in names if n.endswith((drills.MANIFEST_SUFFIX, drills.SIDECAR_SUFFIX))}
    for sidecar in sidecars:
        assert sidecar.rsplit(".", 2)[0] in names, f"{sidecar} outlived its backup"
    return names - sidecars


def test_round_trip_dev_and_prod_side_by_side(platform: Platform) -> None:
    deploy_postgres(platform, "dev", "prod")
    psql(
        platform,
        "dev",
        "CREATE TABLE notes (id int PRIMARY KEY, body text); "
        "INSERT INTO notes VALUES (1, 'dev one'), (2, 'dev two')",
    )
    psql(
        platform,
        "prod",
        "CREATE TABLE notes (id int PRIMARY KEY, body text); "
        "INSERT INTO notes VALUES (1, 'prod one'), (2, 'prod two')",
    )
    saved = {name: take_backup(platform, name) for name in ("dev", "prod")}
    for path in saved.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert backups.verify(path).ok
    for name in ("dev", "prod"):
        psql(
            platform,
            name,
            "DELETE FROM notes WHERE id = 1; UPDATE notes SET body = 'changed'; "
            "INSERT INTO notes VALUES (3, 'later'); "
            "ALTER TABLE notes ADD COLUMN extra int",
        )
    changed = "2|changed|\n3|later|"
    assert psql(platform, "dev", "SELECT * FROM notes ORDER BY id") == changed

    events = drive(restore(platform, platform.dev, saved["dev"]))
    done = result_of(events)
    assert done.ok, (done.summary, done.details)
    assert psql(platform, "dev", "SELECT * FROM notes ORDER BY id") == "1|dev one\n2|dev two"
    assert psql(platform, "prod", "SELECT * FROM notes ORDER BY id") == changed  # untouched
    [question] = [e for e in events if isinstance(e, ConfirmationNeeded)]
    assert question.require_typing == "dev"
    assert saved["dev"].name in question.question and "agent_db_dev" in question.question
    assert any("kept as a database" in line for line in question.details)
    assert isinstance(done.payload, Restored)
    assert done.payload.database == "agent_db_dev"
    assert done.payload.file == str(saved["dev"])
    kept = done.payload.kept_as
    assert kept.startswith("agent_db_dev__before_")
    assert "later" in psql(
        platform, "dev", "SELECT body FROM notes", database=kept
    )  # the state before

    # A dev backup into prod: refused unless allowed, and then the name must be typed.
    refused = result_of(drive(restore(platform, platform.prod, saved["dev"])))
    assert not refused.ok and "backup of dev" in refused.summary
    events = drive(
        restore(platform, platform.prod, saved["dev"], allow_cross_env=True), answer=False
    )
    asked = [e for e in events if isinstance(e, ConfirmationNeeded)]
    assert [e.require_typing for e in asked] == ["prod"]
    assert result_of(events).outcome is Outcome.CANCELLED

    assert result_of(drive(restore(platform, platform.prod, saved["prod"]))).ok
    assert psql(platform, "prod", NOTES) == "1|prod one\n2|prod two"
    assert psql(platform, "dev", NOTES) == "1|dev one\n2|dev two"
    listing = list_all(platform, verify=True)
    assert len(listing["dev"]) == 1 and len(listing["prod"]) == 1  # no dump before a restore
    assert all(b.verified for found in listing.values() for b in found)


def test_postgres_killed_mid_backup_keeps_nothing_and_older_backups_intact(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    deploy_postgres(platform, "dev")
    psql(platform, "dev", BIG_TABLE)
    older = take_backup(platform, "dev")
    container = postgres_container(platform, "dev")
    events: list[Event] = []
    killer = threading.Thread(target=container.kill)
    for event in backup(platform, platform.dev):
        events.append(event)
        if isinstance(event, OutputLine) and event.source == "backup" and not killer.ident:
            # From another thread: the engine finishes a kill only once the exec's
            # output is drained, and this loop is what drains it.
            killer.start()
    killer.join()
    done = result_of(events)
    assert not done.ok
    assert "nothing was kept" in done.summary
    assert "killed" in done.summary or "stopped" in done.summary
    assert files(platform.backups_dir) == {older.name}
    assert backups.verify(older).ok
    assert [e["operation"] for e in audit.read(platform.audit_log)] == ["backup", "backup"]


def test_backup_and_restore_interrupted_leave_no_trace(platform: Platform) -> None:
    deploy_postgres(platform, "dev")
    psql(platform, "dev", BIG_TABLE)
    saved = take_backup(platform, "dev")

    dumping = cast(Generator[Event, None, None], backup(platform, platform.dev))
    for event in dumping:
        if isinstance(event, OutputLine) and event.source == "backup":
            dumping.close()  # what Ctrl-C does to the generator in a front end
            break
    assert files(platform.backups_dir) == {saved.name}  # no partial, no new backup
    wait_for(lambda: psql(platform, "dev", OURS) == "0")

    psql(platform, "dev", "DELETE FROM big WHERE id > 1000")
    restoring = cast(Generator[Event, None, None], restore(platform, platform.dev, saved))
    for event in restoring:
        if isinstance(event, ConfirmationNeeded):
            event.answer(True)
        if isinstance(event, OutputLine) and event.source == "restore":
            restoring.close()
            break
    wait_for(lambda: psql(platform, "dev", OURS) == "0")
    assert psql(platform, "dev", "SELECT count(*) FROM big") == "1000"
    assert (
        psql(
            platform,
            "dev",
            "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_\\_restoring'",
        )
        == "0"
    )  # the new database was dropped
    assert locks.holder(platform.locks_dir, platform.dev.project) is None
    assert audit.read(platform.audit_log)[-1]["result"] == "interrupted"


def test_bad_restore_inputs_are_refused_before_the_database_is_touched(
    platform: Platform, tmp_path: Path
) -> None:
    deploy_postgres(platform, "dev")
    psql(
        platform,
        "dev",
        "CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'kept')",
    )
    good = take_backup(platform, "dev")
    content = good.read_bytes()
    sql = gzip.decompress(content)
    psql(platform, "dev", "INSERT INTO notes VALUES (2, 'after the backup')")
    home = platform.backups_dir
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    def make(path: Path, data: bytes) -> Path:
        path.write_bytes(data)
        return path

    link = home / "dev_20200101_000008.sql.gz"
    link.symlink_to(make(outside / "dev_20200101_000009.sql.gz", content))
    directory = home / "dev_20200101_000010.sql.gz"
    directory.mkdir()
    cases = {
        "No such file": home / "dev_20200101_000001.sql.gz",
        "empty": make(home / "dev_20200101_000002.sql.gz", b""),
        "not a gzip file": make(home / "dev_20200101_000003.sql.gz", sql),
        "truncated": make(home / "dev_20200101_000004.sql.gz", content[: len(content) // 2]),
        "trailer is missing": make(
            home / "dev_20200101_000005.sql.gz", gzip.compress(sql[: sql.index(backups.TRAILER)])
        ),
        "not a backup's name": make(home / "backup.sql.gz", content),
        "is a backup of prod": make(home / "prod_20200101_000006.sql.gz", content),
        "outside": make(outside / "dev_20200101_000007.sql.gz", content),
        "symbolic link to": link,
        "not a regular file": directory,
    }
    before = psql(platform, "dev", NOTES)
    present = files(home)
    for expected, path in cases.items():
        events = drive(restore(platform, platform.dev, path))
        done = result_of(events)
        assert not done.ok, expected
        assert expected in done.summary, (expected, done.summary)
        assert not any(isinstance(e, ConfirmationNeeded) for e in events), expected
        assert psql(platform, "dev", NOTES) == before, expected
    assert files(home) == present  # not even a safety backup was taken

    # The same content, where and as it belongs, is restored.
    from_outside = drive(restore(platform, platform.dev, cases["outside"], allow_outside=True))
    assert result_of(from_outside).ok
    assert psql(platform, "dev", NOTES) == "1|kept"


def test_restore_failing_half_way_leaves_the_database_unchanged(platform: Platform) -> None:
    deploy_postgres(platform, "dev")
    psql(
        platform,
        "dev",
        "CREATE TABLE notes (id int, body text); "
        "CREATE TABLE tags (name text); INSERT INTO notes VALUES (1, 'one'); "
        "INSERT INTO tags VALUES ('a')",
    )
    sql = gzip.decompress(take_backup(platform, "dev").read_bytes())
    end_of_first_copy = sql.index(b"\n\\.\n") + 4
    broken = (
        sql[:end_of_first_copy]
        + b"INSERT INTO public.no_such_table VALUES (1);\n"
        + sql[end_of_first_copy:]
    )
    crafted = platform.backups_dir / "dev_20200101_000000.sql.gz"
    crafted.write_bytes(gzip.compress(broken))
    assert backups.verify(crafted).ok  # it looks like a good backup
    psql(
        platform,
        "dev",
        "INSERT INTO notes VALUES (2, 'two'); DELETE FROM tags; CREATE TABLE later (x int)",
    )
    queries = ("SELECT * FROM notes ORDER BY 1", "SELECT * FROM tags ORDER BY 1")
    before = [psql(platform, "dev", query) for query in queries]

    events = drive(restore(platform, platform.dev, crafted))
    done = result_of(events)
    assert not done.ok
    assert "not touched" in done.summary and "no_such_table" in done.summary
    assert any("no_such_table" in e.line for e in events if isinstance(e, OutputLine))
    assert [psql(platform, "dev", query) for query in queries] == before
    assert psql(platform, "dev", "SELECT count(*) FROM later") == "0"


def test_retention_keeps_the_newest_five_and_never_touches_other_files(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    deploy_postgres(platform, "dev")
    first = take_backup(platform, "dev")
    content = first.read_bytes()
    home = platform.backups_dir
    old = [home / f"dev_2020010{day}_000000.sql.gz" for day in range(1, 6)]
    others = [
        home / "notes.txt",
        home / "dev_backup.sql.gz",
        home / "dev_20200101_000000.sql",
        home / "prod_20200101_000000.sql.gz",
        home / ".prod_20200102_000000.sql.gz.partial",
    ]
    ended = subprocess.Popen(["true"])
    ended.wait()
    gone = ended.pid  # a writer that is gone
    stale = [  # left by a killed backup of dev: the dump, its manifest's and a drill's record
        home / ".dev_20200103_000000.sql.gz.partial",
        home / f".dev_20200103_000000.sql.gz.rows.json.{gone}.partial",
        home / f".dev_20200104_000000.sql.gz.drill.json.{gone}.partial",
    ]
    others += [  # being written by a live process; another env's
        home / f".dev_20200105_000000.sql.gz.drill.json.{os.getpid()}.partial",
        home / f".prod_20200105_000000.sql.gz.rows.json.{gone}.partial",
    ]
    for path in [*old, *others, *stale]:
        path.write_bytes(content)

    newest = take_backup(platform, "dev")  # 7 backups of dev now
    kept = {newest.name, first.name, *(p.name for p in old[2:])}
    assert files(home) == kept | {p.name for p in others}
    pruned = [e for e in audit.read(platform.audit_log) if e["operation"] == "prune"]
    assert sorted(e["arguments"]["file"] for e in pruned) == [old[0].name, old[1].name]
    assert all(e["env"] == "dev" and e["result"] == "ok" for e in pruned)

    # A failed backup prunes nothing.
    older = [home / f"dev_2019010{day}_000000.sql.gz" for day in range(1, 3)]
    for path in older:
        path.write_bytes(content)
    postgres_container(platform, "dev").stop(timeout=5)
    done = result_of(drive(backup(platform, platform.dev)))
    assert not done.ok and "nothing to back up" in done.summary
    assert files(home) == kept | {p.name for p in others + older}


def test_permissions_private_even_with_umask_000(platform: Platform) -> None:
    deploy_postgres(platform, "dev")
    platform.backups_dir.chmod(0o777)
    previous = os.umask(0)
    try:
        path = take_backup(platform, "dev")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(platform.backups_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
def small_disk(platform: Platform) -> Iterator[Path]:
    """data/backups on a 1 MB tmpfs (needs root, as the engine tests do here)."""
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(platform.backups_dir)],
        capture_output=True,
        check=False,
    )
    if mount.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs: {mount.stderr.decode().strip()}")
    try:
        yield platform.backups_dir
    finally:
        subprocess.run(["umount", str(platform.backups_dir)], check=True)


def test_disk_full_fails_clearly_and_leaves_nothing(platform: Platform, small_disk: Path) -> None:
    deploy_postgres(platform, "dev")
    psql(
        platform,
        "dev",
        "CREATE TABLE filler AS SELECT md5(g::text) AS pad FROM generate_series(1, 100000) g",
    )
    done = result_of(drive(backup(platform, platform.dev)))
    assert not done.ok
    assert "is full" in done.summary
    assert files(small_disk) == set()
