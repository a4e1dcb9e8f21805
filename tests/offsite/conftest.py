"""Fixtures of the off-host suite: real restic repositories, a real OpenSSH server.

`pgdb` is one test platform for the module run whose dev and prod Postgres hold
a small `notes` table and a `filler` table (a dump of a few MB). `pg` hands it to
a test with empty backups, logs, audit and off-host state, and `.env` without
any STACK_OFFSITE_* setting; `local_repo` and `sftp_repo` then configure a fresh
repository (a path; an SFTP server on 127.0.0.1 with its own host key, a client
key and a known_hosts the test writes, StrictHostKeyChecking on).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from faults.common import start_postgres
from stack_tui.core.environments import Platform
from support import destroy, engine_or_skip, free_port, make_platform, psql, skip_or_fail

PASSWORD = "restic-test-pw-5b2e9d71"  # noqa: S105 (the test repository's)
FILLER = (
    "CREATE TABLE filler AS SELECT g AS id, md5(g::text) || md5((g * 3)::text) AS pad "
    "FROM generate_series(1, 60000) g"
)
NOTES = (
    "CREATE TABLE notes (id int PRIMARY KEY, body text); "
    "INSERT INTO notes VALUES (1, 'first'), (2, 'second')"
)


@pytest.fixture(scope="module")
def pgdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    engine_or_skip()
    if shutil.which("restic") is None:
        skip_or_fail("needs restic: scripts/test installs it (apt-get install restic)")
    made = make_platform(tmp_path_factory.mktemp("offsite"))
    try:
        for env in ("dev", "prod"):
            start_postgres(made, env)
            psql(made, env, NOTES)
            psql(made, env, FILLER)
        yield made
    finally:
        destroy(made)


@pytest.fixture
def pg(pgdb: Platform) -> Platform:
    """The module's platform, cleaned: no backups, logs, audit, off-host state or setting."""
    for env in ("dev", "prod"):
        start_postgres(pgdb, env)
    for directory in (pgdb.backups_dir, pgdb.logs_dir, pgdb.data / "offsite"):
        shutil.rmtree(directory, ignore_errors=True)
    pgdb.backups_dir.mkdir(mode=0o700)
    pgdb.audit_log.unlink(missing_ok=True)
    set_offsite(pgdb)
    return pgdb


def set_offsite(platform: Platform, **settings: str) -> None:
    """Replace the STACK_OFFSITE_* lines of the platform's .env by `settings`."""
    lines = [
        line
        for line in platform.dotenv.read_text().splitlines()
        if not line.startswith("STACK_OFFSITE_")
    ]
    lines += [f"STACK_OFFSITE_{key.upper()}={value}" for key, value in settings.items()]
    platform.dotenv.write_text("\n".join(lines) + "\n")


def password_file(directory: Path, password: str = PASSWORD) -> Path:
    path = directory / "restic-password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(password + "\n")
    return path


@dataclass
class Repo:
    url: str
    path: Path  # where its files are on this machine (an SFTP one too: the server is local)
    password_file: Path


@pytest.fixture
def local_repo(pg: Platform, tmp_path: Path) -> Repo:
    repo = Repo(str(tmp_path / "repo"), tmp_path / "repo", password_file(tmp_path))
    set_offsite(pg, repository=repo.url, password_file=str(repo.password_file))
    return repo


@dataclass
class Sshd:
    """An OpenSSH server on 127.0.0.1 for the test; only root, only with the test's key."""

    directory: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(self.directory / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        said = b""
        deadline = time.monotonic() + 20
        while b"Server listening on" not in said:  # sshd says so once it accepts connections
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"sshd did not start: {said.decode(errors='replace')}")
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"sshd exited: {said.decode(errors='replace')}")
            said += chunk

    def stop(self) -> None:
        """Kill the server and every session it forked: the connection drops mid-transfer."""
        if self.proc is None:
            return
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.proc.wait()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        self.proc = None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat_line.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if os.geteuid() != 0:
        skip_or_fail("the SFTP tests run an sshd as root")
    if not Path("/usr/sbin/sshd").exists():
        skip_or_fail("needs openssh-server: scripts/test installs it")
    directory = tmp_path / "sshd"
    directory.mkdir(mode=0o700)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    host_public = keygen(directory / "host_key")
    client_public = keygen(directory / "client_key")
    (directory / "authorized_keys").write_text(client_public + "\n")
    port = free_port()
    (directory / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {directory / 'host_key'}\n"
        f"PidFile {directory / 'sshd.pid'}\nAuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nSubsystem sftp internal-sftp\n"
        "LogLevel INFO\n"
    )
    key_type, key = host_public.split()[:2]
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    (directory / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {directory / 'client_key'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {directory / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
    )
    server = Sshd(directory, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sftp_repo(pg: Platform, sshd: Sshd, tmp_path: Path) -> Repo:
    path = tmp_path / "sftp-repo"
    repo = Repo(f"sftp://root@127.0.0.1:{sshd.port}/{path}", path, password_file(tmp_path))
    set_offsite(
        pg,
        repository=repo.url,
        password_file=str(repo.password_file),
        ssh_config=str(sshd.directory / "ssh_config"),
    )
    return repo
