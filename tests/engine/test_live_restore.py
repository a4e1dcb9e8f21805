"""Restore and backup on a live database: a real writer (pgbench's TPC-B), sessions idle in a
transaction holding locks, SIGKILL at the worst moments. Real engine, Compose, PostgreSQL."""

from __future__ import annotations

import fcntl
import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import docker
import pytest

from stack_tui.core import audit, backups, compose, switchover
from stack_tui.core.environments import Platform
from stack_tui.ops.backup import backup
from stack_tui.ops.deploy import deploy
from stack_tui.ops.events import (
    BackupTaken,
    ConfirmationNeeded,
    Event,
    Restored,
    RestoreUndone,
    Waiting,
)
from stack_tui.ops.restore import repair, restore, undo_restore
from support import (
    REPO,
    destroy,
    drive,
    make_platform,
    postgres_container,
    psql,
    result_of,
    wait_for,
)

pytestmark = pytest.mark.engine

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
OURS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'stack-tui/%'"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """dev deployed whole (postgres, qdrant, agent, openwebui) with pgbench's tables."""
    platform = make_platform(tmp_path_factory.mktemp("live"))
    try:
        compose.run(platform.dev, "up", "-d", "--wait")
        bench(platform, "-i", "-s", "2", "-q")
        yield platform
    finally:
        destroy(platform)


def bench(platform: Platform, *args: str) -> str:
    run = postgres_container(platform).exec_run([PGBENCH, "-U", "agent", *args, "agent_db_dev"])
    return str(run.output.decode(errors="replace"))


def databases(platform: Platform) -> list[str]:
    return psql(
        platform,
        "dev",
        "SELECT datname FROM pg_database WHERE datname LIKE 'agent\\_db\\_dev%' ORDER BY 1",
    ).split()


def take_backup(platform: Platform) -> Path:
    done = result_of(drive(backup(platform, platform.dev)))
    assert done.ok, (done.summary, done.details)
    assert isinstance(done.payload, BackupTaken)
    return Path(done.payload.path)


def query_in(platform: Platform, database: str, sql: str) -> str:
    return psql(platform, "dev", sql, database=database)


def schema(platform: Platform, database: str) -> str:
    """A schema dump without the per-run \\restrict key, to compare two databases."""
    run = postgres_container(platform).exec_run(
        ["pg_dump", "--schema-only", "-U", "agent", database]
    )
    assert run.exit_code == 0, run.output
    return re.sub(r"^\\(un)?restrict .*$", "", run.output.decode(), flags=re.MULTILINE)


def counts(platform: Platform, database: str) -> str:
    return query_in(
        platform,
        database,
        "SELECT string_agg(t || '=' || n, ' ' ORDER BY t) FROM (SELECT relname AS t, "
        "(xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM ' || "
        "quote_ident(relname), false, true, '')))[1]::text AS n "
        "FROM pg_stat_user_tables) s",
    )


class Holder:
    """A psql session that took a lock in a transaction and sits idle: its process and pid."""

    def __init__(self, proc: subprocess.Popen[bytes], pid: int) -> None:
        self.proc, self.pid = proc, pid

    def connected(self, platform: Platform) -> bool:
        query = f"SELECT count(*) FROM pg_stat_activity WHERE pid = {int(self.pid)}"  # noqa: S608
        return psql(platform, "dev", query) == "1"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def idle_in_transaction(platform: Platform, lock: str) -> Holder:
    """A psql session that takes `lock` in a transaction, then sits idle (until killed)."""
    holder = subprocess.Popen(
        [
            "docker",
            "exec",
            "-i",
            postgres_container(platform).id,
            "psql",
            "-X",
            "-U",
            "agent",
            "-d",
            "agent_db_dev",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert holder.stdin is not None
    holder.stdin.write(f"BEGIN;\n{lock};\nSELECT 'held by ' || pg_backend_pid();\n".encode())
    holder.stdin.flush()
    assert holder.stdout is not None
    for line in holder.stdout:  # an event we can await: psql printing the SELECT
        if b"held by " in line:
            return Holder(holder, int(line.split(b"held by ")[1]))
    raise AssertionError("the lock holder never took its lock")


def test_committed_writes_during_a_restore_are_kept(live: Platform) -> None:
    saved = take_backup(live)
    history = "SELECT count(*) FROM pgbench_history"
    assert psql(live, "dev", history) == "0"
    writer: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: writer.update(out=bench(live, "-c", "2", "-T", "25", "-n"))
    )
    thread.start()
    wait_for(lambda: int(psql(live, "dev", history)) > 100)
    events = drive(restore(live, live.dev, saved))
    thread.join()
    done = result_of(events)
    assert done.ok, (done.summary, done.details)
    assert isinstance(done.payload, Restored)
    processed = int(re.search(r"actually processed: (\d+)", writer["out"]).group(1))  # type: ignore[union-attr]
    kept = done.payload.kept_as
    assert processed > 0
    in_copy = int(query_in(live, kept, history))
    restored = int(psql(live, "dev", history))
    # Every write pgbench saw committed is in the copy (the backup held none of them).
    assert restored == 0 and in_copy >= processed, (restored, in_copy, processed)
    # pgbench's sessions were shown before they were ended.
    asked = [e for e in events if isinstance(e, ConfirmationNeeded)]
    assert any("pgbench" in line for e in asked for line in e.details)
    assert done.payload.downtime < 30
    assert psql(live, "dev", OURS) == "0"
    # The services came back healthy.
    client = docker.from_env()
    for service in ("agent", "openwebui"):
        [container] = client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={live.dev.project}",
                    f"com.docker.compose.service={service}",
                ]
            }
        )
        assert container.attrs["State"]["Health"]["Status"] == "healthy", service

    # undo-restore puts the copy back (with every write), and keeps the restored state.
    undone = result_of(drive(undo_restore(live, live.dev)))
    assert undone.ok, (undone.summary, undone.details)
    assert isinstance(undone.payload, RestoreUndone)
    assert int(psql(live, "dev", history)) == in_copy
    assert int(query_in(live, undone.payload.kept_as, history)) == 0
    assert switchover.loading_name("agent_db_dev") not in databases(live)


@pytest.mark.parametrize(
    "flags",
    [[], ["--clean"], ["--clean", "--if-exists"]],
    ids=["plain", "clean", "clean-if-exists"],
)
def test_any_plain_dump_makes_the_database_exactly_the_backup(
    live: Platform, flags: list[str]
) -> None:
    psql(
        live,
        "dev",
        "CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text); "
        "TRUNCATE notes; INSERT INTO notes VALUES (1, 'one'), (2, 'two'); "
        "CREATE OR REPLACE VIEW note_view AS SELECT id FROM notes; "
        "COMMENT ON TABLE notes IS 'kept'; "
        "CREATE SEQUENCE IF NOT EXISTS counter",
    )
    expected_schema = schema(live, "agent_db_dev")
    expected_counts = counts(live, "agent_db_dev")
    # Written the way the original stack script does: pg_dump | gzip, with these flags.
    dump = postgres_container(live).exec_run(["pg_dump", *flags, "-U", "agent", "agent_db_dev"])
    assert dump.exit_code == 0
    stamp = (datetime.now() - timedelta(days=1, seconds=len(flags))).strftime("%Y%m%d_%H%M%S")
    file = live.backups_dir / f"dev_{stamp}.sql.gz"
    file.write_bytes(gzip.compress(dump.output))
    psql(
        live,
        "dev",
        "CREATE TABLE added_later (x int); INSERT INTO notes VALUES (3, 'three'); "
        "DROP VIEW note_view",
    )

    done = result_of(drive(restore(live, live.dev, file)))
    assert done.ok, (done.summary, done.details)
    assert schema(live, "agent_db_dev") == expected_schema
    assert counts(live, "agent_db_dev") == expected_counts


def test_a_session_idle_in_a_transaction_is_shown_then_ended(live: Platform) -> None:
    saved = take_backup(live)
    holder = idle_in_transaction(live, "LOCK TABLE pgbench_accounts IN ACCESS EXCLUSIVE MODE")
    try:
        events = drive(restore(live, live.dev, saved))  # the restore, then ending the session
        assert result_of(events).ok
        asked = [e for e in events if isinstance(e, ConfirmationNeeded)]
        assert any("idle in transaction" in line for e in asked for line in e.details)
        assert not holder.connected(live)  # its session was ended
        copies = [name for name in databases(live) if "__before_" in name]
        assert len(copies) == 1  # the newest copy kept, any older one dropped
    finally:
        holder.kill()
    assert psql(live, "dev", OURS) == "0"


def test_declining_to_end_sessions_changes_nothing(live: Platform) -> None:
    saved = take_backup(live)
    holder = idle_in_transaction(live, "LOCK TABLE pgbench_branches IN ACCESS SHARE MODE")
    try:
        before = databases(live)
        answers = iter([True, False])  # the restore yes; ending the session no
        events: list[Event] = []
        for event in restore(live, live.dev, saved):
            if isinstance(event, ConfirmationNeeded):
                event.answer(next(answers))
            events.append(event)
        done = result_of(events)
        assert not done.ok and "not confirmed" in done.summary
        assert databases(live) == before
        assert holder.connected(live)  # still there, still in its transaction
    finally:
        holder.kill()
    assert psql(live, "dev", OURS) == "0"


def test_backups_end_at_the_bound_naming_the_blocker(live: Platform) -> None:
    holder = idle_in_transaction(live, "LOCK TABLE pgbench_accounts IN ACCESS EXCLUSIVE MODE")
    os.environ["STACK_LOCK_TIMEOUT"] = "3"
    try:
        present = set(os.listdir(live.backups_dir))
        started = time.monotonic()
        events = drive(backup(live, live.dev))
        done = result_of(events)
        assert time.monotonic() - started < 15
        assert not done.ok and "gave up" in done.summary and "idle in transaction" in done.summary
        assert any(isinstance(e, Waiting) and e.blockers for e in events)
        assert set(os.listdir(live.backups_dir)) == present
        assert "idle in transaction" in audit.read(live.audit_log)[-1]["detail"]

        # The deploy's pre-deploy backup too: the deploy stops before anything is replaced.
        deployed = result_of(drive(deploy(live, live.dev)))
        assert not deployed.ok and "gave up" in deployed.summary
    finally:
        del os.environ["STACK_LOCK_TIMEOUT"]
        holder.kill()
    assert psql(live, "dev", OURS) == "0"


def cli(platform: Platform, *args: str) -> subprocess.Popen[str]:
    """`stack ARGS` as a separate process on the test platform (to be signalled or killed)."""
    program = (
        "import sys\nfrom pathlib import Path\nfrom stack_tui.cli import main\n"
        "from stack_tui.core.environments import Platform\n"
        f"p = Platform(root=Path({str(REPO)!r}), dev_project={platform.dev_project!r}, "
        f"prod_project={platform.prod_project!r}, data_dir=Path({str(platform.data)!r}), "
        f"env_file=Path({str(platform.dotenv)!r}))\n"
        "sys.exit(main(sys.argv[1:], platform=p))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-u", "-c", program, *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def read_until(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    seen = ""
    for line in proc.stdout:
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never printed:\n{seen}")


def test_ctrl_c_while_waiting_leaves_nothing_of_ours(live: Platform) -> None:
    holder = idle_in_transaction(live, "LOCK TABLE pgbench_accounts IN ACCESS EXCLUSIVE MODE")
    try:
        proc = cli(live, "backup", "--dev")
        read_until(proc, "blocked by")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 130, out
        assert "session ended" in out and "removed" in out
        assert psql(live, "dev", OURS) == "0"
        assert not [n for n in os.listdir(live.backups_dir) if n.endswith(".partial")]
    finally:
        holder.kill()


def test_sigkill_during_the_load_is_repaired_by_the_next_run(live: Platform) -> None:
    psql(
        live,
        "dev",
        "CREATE TABLE IF NOT EXISTS big AS SELECT g AS id, md5(g::text) AS pad "
        "FROM generate_series(1, 400000) g",
    )
    saved = take_backup(live)
    live_before = counts(live, "agent_db_dev")
    proc = cli(live, "backup", "restore", str(saved), "--dev", "--yes")
    read_until(proc, "loaded (")
    proc.kill()
    proc.wait()
    assert switchover.loading_name("agent_db_dev") in databases(live)
    assert counts(live, "agent_db_dev") == live_before  # the live database was never touched

    repaired = drive(repair(live, live.dev))
    assert result_of(repaired).ok
    assert switchover.loading_name("agent_db_dev") not in databases(live)
    wait_for(lambda: psql(live, "dev", OURS) == "0")


def test_sigkill_during_the_switch_over_is_repaired(live: Platform) -> None:
    saved = take_backup(live)
    proc = cli(live, "backup", "restore", str(saved), "--dev", "--yes")
    read_until(proc, "→ stop")  # the services are being stopped: the worst moment
    proc.kill()
    proc.wait()
    journal = switchover.journal_path(live.locks_dir, live.dev.project)
    assert journal.exists()
    names = databases(live)
    assert "agent_db_dev" in names  # never without its database

    # The next operation on dev (here a backup) repairs first, and says so.
    events = drive(backup(live, live.dev))
    done = result_of(events)
    assert done.ok, (done.summary, done.details)
    assert not journal.exists()
    assert switchover.loading_name("agent_db_dev") not in databases(live)
    client = docker.from_env()
    running = {
        c.labels["com.docker.compose.service"]
        for c in client.containers.list(
            filters={"label": f"com.docker.compose.project={live.dev.project}"}
        )
    }
    assert {"agent", "openwebui", "postgres"} <= running


def test_a_volume_too_small_for_two_copies_is_refused(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    client = docker.from_env()
    client.volumes.create(
        platform.dev.postgres_volume,
        driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=160m"},
    )
    try:
        compose.run(platform.dev, "up", "-d", "--wait", "postgres")
        psql(
            platform,
            "dev",
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5(g::text) "
            "AS pad FROM generate_series(1, 200000) g",
        )
        saved = take_backup(platform)
        before = databases(platform)
        events = drive(restore(platform, platform.dev, saved))
        done = result_of(events)
        assert not done.ok and "free" in done.summary and "Nothing was changed" in done.summary
        assert not any(isinstance(e, ConfirmationNeeded) for e in events)
        assert databases(platform) == before
    finally:
        destroy(platform)


def test_retention_counts_automatic_backups_and_spares_what_a_restore_reads(
    live: Platform,
) -> None:
    home = live.backups_dir
    for old in home.glob("dev_*.sql.gz"):
        old.unlink()
    first = take_backup(live)
    content = first.read_bytes()
    future = home / f"dev_{(datetime.now() + timedelta(days=3)):%Y%m%d_%H%M%S}.sql.gz"
    future.write_bytes(content)
    oldest = home / "dev_20200101_000000.sql.gz"
    oldest.write_bytes(content)
    for day in range(2, 6):
        (home / f"dev_2020010{day}_000000.sql.gz").write_bytes(content)
    with oldest.open("rb") as reading:  # what a running restore holds
        fcntl.flock(reading.fileno(), fcntl.LOCK_SH)
        done = result_of(drive(deploy(live, live.dev)))  # its pre-deploy backup prunes too
    assert done.ok, (done.summary, done.details)
    names = {p.name for p in home.glob("dev_*.sql.gz")}
    assert future.name in names  # never pruned, never counted as newest
    assert oldest.name in names  # a restore was reading it
    assert first.name in names
    assert "dev_20200102_000000.sql.gz" not in names  # older than the newest five good ones
    assert len(names - {future.name, oldest.name}) == backups.DEFAULT_KEEP
