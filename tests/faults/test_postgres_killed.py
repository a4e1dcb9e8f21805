"""The Postgres container killed in the middle of a backup, and of a restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.common import (
    backup_checksums,
    partials,
    start_postgres,
    table_checksum,
)
from stack_tui.core import audit, backups, locks
from stack_tui.core.environments import Platform
from stack_tui.ops.backup import backup
from stack_tui.ops.events import (
    BackupTaken,
    Caution,
    ConfirmationNeeded,
    OutputLine,
    Result,
    StepStarted,
)
from stack_tui.ops.restore import repair, restore
from support import drive, postgres_container, psql, result_of

pytestmark = pytest.mark.engine


def take_backup(platform: Platform) -> Path:
    done = result_of(drive(backup(platform, platform.dev)))
    assert done.ok, (done.summary, done.details)
    assert isinstance(done.payload, BackupTaken)
    return Path(done.payload.path)


def test_postgres_killed_during_a_backup_fails_it_cleanly(big: Platform) -> None:
    take_backup(big)
    older = backup_checksums(big.backups_dir)
    container = postgres_container(big)
    events = []
    killed = False
    for event in backup(big, big.dev):
        events.append(event)
        if not killed and isinstance(event, OutputLine) and "of SQL dumped" in event.line:
            container.kill()  # mid-dump: a progress line means pg_dump is streaming
            killed = True
    assert killed, "the dump ended before it could be interrupted: make the table bigger"
    # Not while the operation is paused: dockerd finishes the container only once the
    # exec's output has been read.
    container.wait(timeout=60)
    result = result_of(events)
    assert not result.ok
    assert "nothing was kept" in result.summary
    assert "Postgres container stopped" in result.summary or "killed" in result.summary
    assert backup_checksums(big.backups_dir) == older, "a failed backup must leave no backup"
    assert partials(big.backups_dir) == []
    assert locks.holder(big.locks_dir, big.dev_project) is None
    entry = audit.read(big.audit_log)[-1]
    assert (entry["operation"], entry["result"]) == ("backup", "failed")
    assert not [e for e in audit.read(big.audit_log) if e["operation"] == "prune"]
    print(f"\npostgres killed during backup: {result.summary}")


def test_postgres_killed_during_a_restore_leaves_the_database_as_it_was(big: Platform) -> None:
    saved = take_backup(big)
    psql(
        big,
        "dev",
        "INSERT INTO notes VALUES (3, 'after the backup'); "
        "UPDATE notes SET body = 'changed' WHERE id = 1; "
        "DELETE FROM big WHERE id % 100 = 0; "
        "CREATE TABLE later (id int); INSERT INTO later VALUES (42)",
    )
    before = table_checksum(big)
    container = postgres_container(big)
    events = []
    killed = False
    loading = False
    for event in restore(big, big.dev, saved):
        events.append(event)
        if isinstance(event, ConfirmationNeeded):
            event.answer(True)
        elif isinstance(event, StepStarted) and event.step == "load":
            loading = True
        elif loading and not killed and isinstance(event, OutputLine) and "loaded (" in event.line:
            container.kill()  # the load into agent_db_dev__restoring is half-way
            killed = True
    assert killed, "the restore ended before it could be interrupted: make the table bigger"
    container.wait(timeout=60)
    result = result_of(events)
    assert isinstance(result, Result) and not result.ok
    assert "load failed" in result.summary.lower() and "not touched" in result.summary
    # Postgres is gone: the half-loaded database could not be dropped, and we said so.
    assert any("next operation" in e.message for e in events if isinstance(e, Caution))
    assert [info.path for info in backups.list_backups(big.backups_dir)] == [saved]
    assert partials(big.backups_dir) == []
    assert locks.holder(big.locks_dir, big.dev_project) is None
    entry = audit.read(big.audit_log)[-1]
    assert (entry["operation"], entry["result"]) == ("restore", "failed")

    start_postgres(big)  # the live database was never part of the load
    assert table_checksum(big) == before
    notes = psql(big, "dev", "SELECT body FROM notes ORDER BY id")
    assert notes == "changed\nsecond\nafter the backup"
    # The next operation on dev removes the leftover first.
    repaired = result_of(list(repair(big, big.dev)))
    assert repaired.ok
    assert (
        psql(big, "dev", "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_\\_restoring'")
        == "0"
    )
    print(f"\npostgres killed during restore: {result.summary} / {result.details}")
