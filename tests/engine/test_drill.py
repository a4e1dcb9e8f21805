"""Restore drills against the real engine and the real PostgreSQL test image."""

from __future__ import annotations

import gzip
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from stack_tui import cli
from stack_tui.core import audit, backups, compose, drills
from stack_tui.core.environments import Platform
from stack_tui.ops.backup import backup
from stack_tui.ops.drill import DRILL_LABEL, drill
from stack_tui.ops.events import BackupTaken, Outcome, OutputLine
from support import REPO, drive, psql, result_of, wait_for

pytestmark = pytest.mark.engine

SCHEMA = (
    "CREATE TABLE notes (id int PRIMARY KEY, body text); "
    "INSERT INTO notes SELECT g, 'note ' || g || E'\\nsecond line' FROM generate_series(1, 500) g; "
    "CREATE TABLE \"Odd Name\" (v text); INSERT INTO \"Odd Name\" VALUES ('a'), ('b'); "
    "CREATE TABLE empty (id int); "
    "CREATE VIEW recent AS SELECT * FROM notes WHERE id > 400; "
    "CREATE INDEX notes_body ON notes (body); "
    "CREATE FUNCTION twice(a int) RETURNS int LANGUAGE sql AS 'SELECT 2 * a'"
)


def dev_backup(platform: Platform) -> Path:
    compose.run(platform.dev, "up", "-d", "--wait", "postgres")
    psql(platform, "dev", SCHEMA)
    done = result_of(drive(backup(platform, platform.dev)))
    assert done.ok, done.summary
    assert isinstance(done.payload, BackupTaken)
    return Path(done.payload.path)


def drill_containers(platform: Platform) -> list[str]:
    client = docker.from_env()
    found = client.containers.list(
        all=True, filters={"label": f"{DRILL_LABEL}={platform.dev.project}"}
    )
    return [c.name for c in found]


def rewrite(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a backup's SQL through `edit`, keeping it a well-formed gzip file."""
    sql = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(edit(sql)))


def test_drill_ok_is_recorded_beside_the_backup(
    platform: Platform, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dev_backup(platform)
    capsys.readouterr()
    monkeypatch.setattr(cli.out, "width", 250)  # a pipe: no wrapping of the table
    assert cli.main(["backup", "drill", "--dev", "--latest"], platform=platform) == cli.EXIT_OK
    assert "restored and checked in" in capsys.readouterr().out
    assert cli.main(["backup", "list"], platform=platform) == cli.EXIT_OK
    assert "drilled ok <1m ago" in capsys.readouterr().out
    record = drills.read(path)
    assert record is not None and record.ok
    assert record.tables == 3 and record.rows == 502
    assert record.objects >= 5  # tables, view, index, function, constraint
    assert record.seconds > 0 and record.total_seconds >= record.seconds
    sidecar = drills.sidecar(path)
    assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    assert record.summary().startswith("drilled ok ")
    assert drill_containers(platform) == []
    [line] = [e for e in audit.read(platform.audit_log) if e["operation"] == "drill"]
    assert line["result"] == "ok"
    # The backup is listed with its drill, and retention counts it as good.
    [info] = backups.list_backups(platform.backups_dir, "dev")
    assert info.drill == record and backups.counts_as_good(info)


def test_a_row_missing_from_a_copy_block_fails_the_drill(platform: Platform) -> None:
    path = dev_backup(platform)
    assert drills.read_manifest(path) == {
        "public.notes": 500,
        'public."Odd Name"': 2,
        "public.empty": 0,
    }
    # Drop the row with id 7 from the notes COPY block, keeping valid gzip and a complete
    # dump: only the rows counted while the backup was written can tell.
    rewrite(path, lambda sql: sql.replace(b"7\tnote 7\\nsecond line\n", b"", 1))
    assert backups.verify(path).ok
    done = result_of(drive(drill(platform, platform.dev, path)))
    assert not done.ok
    record = drills.read(path)
    assert record is not None and not record.ok
    assert record.mismatches == ["public.notes: backed up with 500 rows, the file carries 499"]
    assert "public.notes" in done.summary and "FAILED" in done.summary
    [info] = backups.list_backups(platform.backups_dir, "dev")
    assert not backups.counts_as_good(info)
    assert drill_containers(platform) == []


def test_rows_the_load_loses_fail_the_drill(platform: Platform) -> None:
    """The COPY block carries a row the table does not keep (a trigger drops it on the way in)."""
    path = dev_backup(platform)
    drills.manifest(path).unlink()  # a backup from before manifests: the file is all there is
    rewrite(
        path,
        lambda sql: sql.replace(
            b"COPY public.notes ",
            b"CREATE FUNCTION public.drop_seven() RETURNS trigger LANGUAGE plpgsql AS "
            b"$$BEGIN IF new.id = 7 THEN RETURN NULL; END IF; RETURN new; END$$;\n"
            b"CREATE TRIGGER drop_seven BEFORE INSERT ON public.notes "
            b"FOR EACH ROW EXECUTE FUNCTION public.drop_seven();\nCOPY public.notes ",
            1,
        ),
    )
    done = result_of(drive(drill(platform, platform.dev, path)))
    record = drills.read(path)
    assert record is not None and not record.ok, done.summary
    assert record.mismatches == ["public.notes: dump 500 rows, loaded 499"]


def test_truncated_dump_fails_and_marks_the_backup(platform: Platform) -> None:
    path = dev_backup(platform)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    done = result_of(drive(drill(platform, platform.dev, path)))
    assert not done.ok and "truncated" in done.summary, done.summary
    record = drills.read(path)
    assert record is not None and not record.ok and "truncated" in record.reason
    [info] = backups.list_backups(platform.backups_dir, "dev")
    assert not backups.counts_as_good(info)
    assert drill_containers(platform) == []


def test_bad_inputs_are_refused_and_leave_nothing(platform: Platform, tmp_path: Path) -> None:
    assert "no backups" in result_of(drive(drill(platform, platform.dev, None))).summary
    missing = platform.backups_dir / "dev_20200101_000000.sql.gz"
    assert "No such file" in result_of(drive(drill(platform, platform.dev, missing))).summary
    prod_file = platform.backups_dir / "prod_20200101_000000.sql.gz"
    prod_file.write_bytes(b"x")
    refused = result_of(drive(drill(platform, platform.dev, prod_file)))
    assert "a backup of prod, not of dev" in refused.summary
    assert refused.outcome is Outcome.REFUSED
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert "not a backup file" in result_of(drive(drill(platform, platform.dev, other))).summary
    assert not list(platform.backups_dir.glob("*.drill.json"))


def test_missing_postgres_image_is_a_clear_refusal(tmp_path: Path, engine_client) -> None:  # type: ignore[no-untyped-def]
    from support import destroy, make_platform

    platform = make_platform(tmp_path, POSTGRES_IMAGE="stack-tui-test/no-such-postgres:0")
    try:
        path = platform.backups_dir / "dev_20200101_000000.sql.gz"
        path.write_bytes(gzip.compress(b"-- PostgreSQL database dump complete\n"))
        done = result_of(drive(drill(platform, platform.dev, path)))
        assert not done.ok and "is not on this host" in done.summary, done.summary
        assert drills.read(path) is None  # not the backup's fault: not marked
    finally:
        destroy(platform)


def test_sigkill_leaves_a_server_that_the_next_drill_removes(platform: Platform) -> None:
    path = dev_backup(platform)
    # Enough data that the load is still running when the kill lands.
    rewrite(
        path,
        lambda sql: sql.replace(
            b"-- PostgreSQL database dump complete",
            b"CREATE TABLE slow AS SELECT pg_sleep(30);\n-- PostgreSQL database dump complete",
        ),
    )
    script = (
        "import sys; from pathlib import Path; from stack_tui.core.environments import Platform;"
        "from stack_tui.ops.drill import drill;"
        f"p = Platform(root=Path({str(REPO)!r}), dev_project={platform.dev_project!r}, "
        f"prod_project={platform.prod_project!r}, data_dir=Path({str(platform.data)!r}), "
        f"env_file=Path({str(platform.dotenv)!r}), compose_dir=Path({str(platform.compose)!r}));"
        "[print(e.to_json(), flush=True) for e in drill(p, p.dev, None)]"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"step": "load"' in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(drill_containers(platform)) == 1  # what a SIGKILL leaves behind
    psql(platform, "dev", "SELECT 1")
    rewrite(path, lambda sql: sql.replace(b"CREATE TABLE slow AS SELECT pg_sleep(30);\n", b""))
    events = drive(drill(platform, platform.dev, None))
    assert result_of(events).ok
    assert any(
        isinstance(e, OutputLine) and "left by an interrupted drill" in e.line for e in events
    )
    wait_for(lambda: drill_containers(platform) == [])


def test_no_space_for_the_throwaway_database_is_a_clear_error(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real ENOSPC: the throwaway server's tmpfs is made too small for the data."""
    from stack_tui.ops import drill as drill_module

    compose.run(platform.dev, "up", "-d", "--wait", "postgres")
    psql(
        platform,
        "dev",
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 400000) g",
    )
    done = result_of(drive(backup(platform, platform.dev)))
    assert isinstance(done.payload, BackupTaken)
    path = Path(done.payload.path)
    monkeypatch.setattr(drill_module, "_tmpfs_size", lambda client, path: 64 << 20)
    failed = result_of(drive(drill(platform, platform.dev, path)))
    assert not failed.ok and "ran out of disk space" in failed.summary, failed.summary
    assert drills.read(path) is None  # not the backup's fault: it is not marked
    assert drill_containers(platform) == []
