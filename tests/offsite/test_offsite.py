"""Off-host copies against real restic, a real PostgreSQL and a real OpenSSH server."""

from __future__ import annotations

import gzip
import json
import stat
import subprocess
from pathlib import Path

import pytest

from offsite.conftest import PASSWORD, Repo, Sshd, set_offsite
from stack_tui import cli
from stack_tui.core import audit, backups, offsite
from stack_tui.core.environments import Platform
from stack_tui.ops import offsite as offsite_ops
from stack_tui.ops.backup import backup
from stack_tui.ops.events import Warning
from support import drive, psql, result_of

pytestmark = pytest.mark.engine

NOTES = "SELECT id, body FROM notes ORDER BY id"


def take_backup(platform: Platform, env: str = "dev", keep: int = 5) -> Path:
    done = result_of(drive(backup(platform, platform.env(env), keep=keep)))
    assert done.ok, (done.summary, done.details)
    return Path(done.data["path"])


def init(platform: Platform) -> None:
    assert cli.main(["offsite", "init"], platform=platform) == cli.EXIT_OK


def restic(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["restic", "--repo", repo.path, "--password-file",
                           str(repo.password_file), *args],
                          capture_output=True, text=True, check=False)


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
