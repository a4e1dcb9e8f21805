"""Off-host copies against real restic, a real PostgreSQL and a real OpenSSH server."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from offsite.conftest import PASSWORD, Repo, Sshd, password_file, set_offsite
from stack_tui import cli
from stack_tui.core import audit, backups, offsite
from stack_tui.core.environments import Platform
from stack_tui.ops import offsite as offsite_ops
from stack_tui.ops.backup import backup
from stack_tui.ops.events import BackupTaken, Caution, Outcome, Result
from support import drive, psql, result_of, skip_or_fail, wait_for

pytestmark = pytest.mark.engine

NOTES = "SELECT id, body FROM notes ORDER BY id"


def backup_path(result: Result) -> Path:
    assert isinstance(result.payload, BackupTaken), result
    return Path(result.payload.path)


def take_backup(platform: Platform, env: str = "dev", keep: int = 5) -> Path:
    done = result_of(drive(backup(platform, platform.env(env), keep=keep)))
    assert done.ok, (done.summary, done.details)
    return backup_path(done)


def init(platform: Platform) -> None:
    assert cli.main(["offsite", "init"], platform=platform) == cli.EXIT_OK


def restic(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["restic", "--repo", repo.path, "--password-file", str(repo.password_file), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def snapshots(repo: Repo) -> list[dict]:  # type: ignore[type-arg]
    done = restic(repo, "snapshots", "--json")
    assert done.returncode == 0, done.stderr
    return sorted(json.loads(done.stdout) or [], key=lambda s: s["time"])


def tags(snapshot: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return dict(tag.partition("=")[::2] for tag in snapshot["tags"])


def test_backup_is_copied_off_host_as_plain_sql(pg: Platform, local_repo: Repo) -> None:
    init(pg)
    assert (local_repo.path / "config").is_file()
    version = restic(local_repo, "cat", "config")
    assert json.loads(version.stdout)["version"] == 2, "format 2: compressed"

    path = take_backup(pg)
    copies = snapshots(local_repo)
    assert len(copies) == 1
    got = tags(copies[0])
    assert got["env"] == "dev" and got["reason"] == "manual" and got["verified"] == "ok"
    assert path.name == f"dev_{got['stamp']}.sql.gz"
    assert copies[0]["paths"] == ["/stack-tui/dev.sql"]
    dumped = restic(local_repo, "dump", copies[0]["id"], "/stack-tui/dev.sql")
    assert dumped.stdout.encode() == gzip.decompress(path.read_bytes())


def test_copy_over_sftp_checks_the_host_key(
    pg: Platform, sftp_repo: Repo, sshd: Sshd, capsys: pytest.CaptureFixture[str]
) -> None:
    init(pg)
    take_backup(pg, "prod")
    assert [tags(s)["env"] for s in snapshots(sftp_repo)] == ["prod"]

    # Another host key than the one known: refused, never accepted silently.
    known = sshd.directory / "known_hosts"
    good = known.read_text()
    key_type, key = (sshd.directory / "client_key.pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key}\n")
    capsys.readouterr()
    assert cli.main(["offsite", "push"], platform=pg) == cli.EXIT_FAILED
    said = capsys.readouterr().out
    assert "host key" in said and "never accepted silently" in said
    known.write_text(good)
    assert len(snapshots(sftp_repo)) == 1


def test_off_host_only_backup_restores_the_same_rows(
    pg: Platform,
    local_repo: Repo,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli.out, "width", 300)  # the listing never cuts a path
    init(pg)
    path = take_backup(pg)
    rows = psql(pg, "dev", NOTES)
    path.unlink()  # the host "lost" it: only the off-host copy is left
    psql(pg, "dev", "DELETE FROM notes; INSERT INTO notes VALUES (9, 'after the backup')")

    capsys.readouterr()
    assert cli.main(["backup", "list", "--offsite"], platform=pg) == cli.EXIT_OK
    listing = capsys.readouterr().out
    assert "only off-host" in listing and path.name in listing

    code = cli.main(["dev", "backup", "restore", path.name, "--yes"], platform=pg)
    said = capsys.readouterr().out
    assert code == cli.EXIT_OK, said
    assert "fetch" in said
    assert psql(pg, "dev", NOTES) == rows
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert backups.verify(path).ok
    operations = [(e["operation"], e["result"]) for e in audit.read(pg.audit_log)]
    assert ("offsite-fetch", "ok") in operations and ("restore", "ok") in operations
    # A restore writes no backup (the database as it was is kept as a database), so the
    # repository still holds the one copy.
    assert [tags(s)["reason"] for s in snapshots(local_repo)] == ["manual"]


def test_retention_on_both_sides_never_touches_the_other_env(
    pg: Platform, local_repo: Repo
) -> None:
    init(pg)
    set_offsite(
        pg, repository=local_repo.url, password_file=str(local_repo.password_file), keep="3"
    )
    prod = take_backup(pg, "prod")
    taken = [take_backup(pg, "dev", keep=2) for _ in range(4)]
    local = [b.path for b in backups.list_backups(pg.backups_dir, "dev")]
    assert local == [taken[3], taken[2]]
    dev_copies = [s for s in snapshots(local_repo) if tags(s)["env"] == "dev"]
    assert [f"dev_{tags(s)['stamp']}.sql.gz" for s in dev_copies] == [p.name for p in taken[1:]]
    prod_copies = [s for s in snapshots(local_repo) if tags(s)["env"] == "prod"]
    assert [f"prod_{tags(s)['stamp']}.sql.gz" for s in prod_copies] == [prod.name]

    # keep 1: the newest copy stays, whatever else goes
    set_offsite(
        pg, repository=local_repo.url, password_file=str(local_repo.password_file), keep="1"
    )
    assert cli.main(["offsite", "push", "--dev"], platform=pg) == cli.EXIT_OK
    left = snapshots(local_repo)
    assert sorted(f"{tags(s)['env']}_{tags(s)['stamp']}.sql.gz" for s in left) == sorted(
        [prod.name, taken[3].name]
    )


def test_wrong_password_is_loud_and_the_backup_stands(
    pg: Platform, local_repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    init(pg)
    local_repo.password_file.write_text("not-the-password\n")
    events = drive(backup(pg, pg.dev))
    result = result_of(events)
    assert result.ok, "the local backup does not fail with its copy"
    path = backup_path(result)
    assert backups.verify(path).ok
    warnings = [e.message for e in events if isinstance(e, Caution)]
    assert any("refuses the password" in w and "offsite push --dev" in w for w in warnings)
    assert result.details and PASSWORD not in " ".join(result.details)

    fine, line = offsite_ops.status_line(pg, pg.dev)
    assert not fine and "FAILED" in line
    capsys.readouterr()
    cli.main(["dev", "status"], platform=pg)
    assert "off-host" in capsys.readouterr().out
    entries = audit.read(pg.audit_log)
    assert [(e["operation"], e["result"]) for e in entries] == [
        ("offsite-init", "ok"),
        ("backup", "ok"),
        ("offsite-push", "failed"),
    ]
    row = offsite_ops.check_row(pg)
    assert not row.ok and row.dev == "FAILED"

    # The password back: the next push uploads what was missed.
    local_repo.password_file.write_text(PASSWORD + "\n")
    assert cli.main(["offsite", "push", "--dev"], platform=pg) == cli.EXIT_OK
    assert [f"dev_{tags(s)['stamp']}.sql.gz" for s in snapshots(local_repo)] == [path.name]
    assert offsite_ops.status_line(pg, pg.dev)[0]
    for log in [pg.audit_log, *pg.logs_dir.iterdir()]:
        assert PASSWORD not in log.read_text()


def test_repository_locked_by_another_restic(pg: Platform, local_repo: Repo) -> None:
    init(pg)
    take_backup(pg)
    holder = stopped_holding_its_lock(local_repo)
    try:
        events = drive(backup(pg, pg.dev))
        result = result_of(events)
        assert result.ok and backups.verify(backup_path(result)).ok
        warning = next((e.message for e in events if isinstance(e, Caution)), None)
        assert warning is not None, [str(e) for e in events]
        assert "locked by another restic process" in warning and "restic unlock" in warning
        assert len(snapshots_no_lock(local_repo)) == 1, "nothing changed while locked"
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.wait()
    assert result_of(drive(offsite_ops.push(pg, pg.dev))).ok
    assert len(snapshots(local_repo)) == 2


def stopped_holding_its_lock(repo: Repo) -> subprocess.Popen[bytes]:
    """A `restic check` SIGSTOPped while it holds its exclusive lock (on a small repository
    it may finish between the lock appearing and the signal: then another one)."""
    locks = repo.path / "locks"
    # A lock seen below must be this check's: none left from an earlier copy's restic (on a
    # busy host it can still be on its way out when our own process has returned).
    wait_for(lambda: not any(locks.iterdir()), 30, interval=0.01)
    for _ in range(10):
        holder = subprocess.Popen(
            [*restic_command(repo), "check", "--read-data"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda h=holder: h.poll() is not None or any(locks.iterdir()), 30, interval=0.01)
        os.kill(holder.pid, signal.SIGSTOP)
        # Stopped for sure (state T; a restic already exiting never stops), and only then
        # is its lock known to stay.
        wait_for(lambda h=holder: process_state(h.pid) in "TZX", 30, interval=0.01)
        if process_state(holder.pid) == "T" and any(locks.iterdir()):
            return holder
        os.kill(holder.pid, signal.SIGCONT)
        holder.wait()
    raise AssertionError("restic check never held its lock long enough to be stopped")


def process_state(pid: int) -> str:
    """R, S, T (stopped), Z...; X once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def restic_command(repo: Repo) -> list[str]:
    return ["restic", "--repo", str(repo.path), "--password-file", str(repo.password_file)]


def snapshots_no_lock(repo: Repo) -> list[dict]:  # type: ignore[type-arg]
    done = restic(repo, "snapshots", "--json", "--no-lock")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) or []


def test_a_copy_tagged_for_the_other_env_is_never_taken_for_ours(
    pg: Platform, local_repo: Repo
) -> None:
    init(pg)
    set_offsite(pg)  # off: the dev backup stays local for now
    path = take_backup(pg, "dev")
    stamp = path.name.removeprefix("dev_").removesuffix(".sql.gz")
    # A prod copy with the very same stamp (both envs backed up in the same second).
    forged = subprocess.run(
        [
            "restic",
            "--repo",
            str(local_repo.path),
            "--password-file",
            str(local_repo.password_file),
            "backup",
            "--stdin",
            "--stdin-filename",
            "stack-tui/prod.sql",
            "--host",
            offsite.HOST,
            "--tag",
            f"env=prod,stamp={stamp},{offsite.COMPLETE_TAG}",
        ],
        input=b"-- prod data\n",
        capture_output=True,
        check=False,
    )
    assert forged.returncode == 0, forged.stderr
    set_offsite(
        pg, repository=local_repo.url, password_file=str(local_repo.password_file), keep="1"
    )
    assert result_of(drive(offsite_ops.push(pg, pg.dev))).ok
    by_env = sorted(tags(s)["env"] for s in snapshots(local_repo))
    assert by_env == ["dev", "prod"], "dev uploaded; prod's copy not forgotten by dev's keep"
    path.unlink()
    fetched = result_of(drive(offsite_ops.restore_copy(pg, pg.dev, path.name), answer=False))
    assert not fetched.ok and fetched.outcome is Outcome.CANCELLED, "fetched, then the question"
    assert gzip.decompress(path.read_bytes()).startswith(b"--"), "dev's SQL, not prod's"
    assert b"prod data" not in gzip.decompress(path.read_bytes())
    # A prod copy is not restored into dev without the allowance, and not even fetched.
    refused = result_of(drive(offsite_ops.restore_copy(pg, pg.dev, f"prod_{stamp}.sql.gz")))
    assert not refused.ok and "--allow-cross-env" in " ".join(refused.details)
    assert not (pg.backups_dir / f"prod_{stamp}.sql.gz").exists()


def test_credentials_in_the_url_are_masked_everywhere(
    pg: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "url-secret-41f0c2aa"  # noqa: S105 (the test's)
    url = f"rest:http://ops:{secret}@127.0.0.1:1/repo"  # nothing listens on port 1
    password = tmp_path / "pw"
    password.write_text(PASSWORD)
    password.chmod(0o600)
    set_offsite(pg, repository=url, password_file=str(password))
    events = drive(backup(pg, pg.dev))
    assert result_of(events).ok
    warning = next(e.message for e in events if isinstance(e, Caution))
    assert "unreachable" in warning and "ops:***@127.0.0.1" in warning
    for argv in (
        ["dev", "status"],
        ["offsite", "push", "--dev"],
        ["offsite", "check"],
        ["backup", "list", "--offsite"],
        ["check", "--json"],
    ):
        cli.main(argv, platform=pg)
    said = capsys.readouterr()
    assert "ops:***@" in said.out + said.err
    assert "STACK_OFFSITE_REPOSITORY=rest:http://ops:***@" in said.out, "check's .env row"
    everything = [
        said.out,
        said.err,
        *(e.to_json() for e in events),
        pg.audit_log.read_text(),
        *(p.read_text() for p in pg.logs_dir.iterdir()),
        *(p.read_text() for p in (pg.data / "offsite").iterdir()),
    ]
    assert not [text for text in everything if secret in text]


def test_a_copy_that_is_not_there_and_a_read_only_repository(
    pg: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() != 0:
        skip_or_fail("mounting a tmpfs needs root")
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        repo = Repo(str(mount / "repo"), mount / "repo", password_file(tmp_path))
        set_offsite(pg, repository=repo.url, password_file=str(repo.password_file))
        init(pg)
        first = take_backup(pg)
        capsys.readouterr()
        code = cli.main(
            ["dev", "backup", "restore", "dev_20200101_000000.sql.gz", "--yes"], platform=pg
        )
        said = capsys.readouterr().out
        assert code == cli.EXIT_FAILED and "no off-host copy dev_20200101_000000" in said
        assert not list(pg.backups_dir.glob("*2020*")) and not list(pg.backups_dir.glob(".*"))

        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        events = drive(backup(pg, pg.dev))
        assert result_of(events).ok, "the local backup stands"
        warning = next(e.message for e in events if isinstance(e, Caution))
        assert "cannot be written" in warning and "Read-only file system" in warning, warning
        assert [tags(s)["stamp"] for s in snapshots_no_lock(repo)] == [first.name[4:19]]
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def test_drill_of_an_off_host_only_copy_fetches_it_first(
    pg: Platform, local_repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    init(pg)
    path = take_backup(pg)
    prod = take_backup(pg, "prod")
    path.unlink()  # only off-host now
    prod.unlink()

    capsys.readouterr()
    code = cli.main(["backup", "drill", "--dev", path.name], platform=pg)
    said = capsys.readouterr().out
    assert code == cli.EXIT_OK, said
    assert "fetch" in said
    [fetched] = backups.list_backups(pg.backups_dir, "dev")
    assert fetched.path == path and backups.verify(path).ok
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fetched.drill is not None and fetched.drill.ok, "the drill is recorded beside it"
    operations = [(e["operation"], e["result"]) for e in audit.read(pg.audit_log)]
    assert ("offsite-fetch", "ok") in operations and ("drill", "ok") in operations

    # A copy of prod is not drilled as dev's, and not even fetched.
    code = cli.main(["backup", "drill", "--dev", prod.name], platform=pg)
    said = capsys.readouterr().out
    assert code == cli.EXIT_REFUSED and "backup drill --prod" in said, said
    assert not prod.exists() and not list(pg.backups_dir.glob(".*"))
