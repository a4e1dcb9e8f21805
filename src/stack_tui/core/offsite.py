"""The one place that runs restic: off-host, encrypted copies of the backups.

Configuration (process environment first, then `.env`, as Compose reads it):

    STACK_OFFSITE_REPOSITORY     a restic repository: a path, sftp:user@host:/path,
                                 s3:..., rest:https://user:pass@host/ ...
    STACK_OFFSITE_PASSWORD_FILE  the repository's password, in a file of mode 0600
    STACK_OFFSITE_KEEP           copies kept per environment (default: the local keep)
    STACK_OFFSITE_SSH_CONFIG     an ssh_config file for sftp: repositories (key, port,
                                 known_hosts); host keys are always checked strictly

The password reaches restic only through `--password-file`: never on a command
line, never in the environment. Credentials in a repository URL are masked in
everything shown, and removed from everything restic says. restic runs without a
shell, its output goes to temporary files (so a chatty restic can never block on
a pipe we do not read), and its errors become StackErrors that say what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from stack_tui.core import dotenv, restic_guard
from stack_tui.core.errors import Refused, StackError

REPOSITORY_VAR = "STACK_OFFSITE_REPOSITORY"
PASSWORD_FILE_VAR = "STACK_OFFSITE_PASSWORD_FILE"  # noqa: S105 (a variable's name)
KEEP_VAR = "STACK_OFFSITE_KEEP"
SSH_CONFIG_VAR = "STACK_OFFSITE_SSH_CONFIG"
VARIABLES = (REPOSITORY_VAR, PASSWORD_FILE_VAR, KEEP_VAR, SSH_CONFIG_VAR)

#: Every snapshot carries this host name, so a rebuilt host sees the same copies.
HOST = "stack-tui"
#: The tag of a complete copy of a verified backup. Given with the upload: restic saves a
#: snapshot only of a whole stream (see Upload); snapshots without it are not ours.
COMPLETE = {"verified": "ok"}
COMPLETE_TAG = "verified=ok"
#: Run as a script beside restic by Upload.
GUARD = Path(restic_guard.__file__)
#: Repository format 2: restic compresses.
REPOSITORY_VERSION = "2"
#: restic's variables that would give it another password or repository than ours.
_RESTIC_OVERRIDES = (
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
)
_SFTP = re.compile(
    r"sftp:(?://)?(?:(?P<user>[^@/:]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)"
    r"(?::(?P<port>\d+))?"
)
STDERR_KEPT = 16 << 10
#: restic's stdin pipe: the default pipe-max-size, what any user may ask for.
PIPE_SIZE = 1 << 20


class OffsiteError(StackError):
    """restic failed: the repository is unreachable, locked, or refuses us."""


class NotConfigured(Refused):
    """No repository is configured: off-host copies are off."""


@dataclass(frozen=True)
class Config:
    repository: str
    password_file: Path
    keep: int | None  # None: mirror the local retention
    ssh_config: Path | None

    @property
    def shown(self) -> str:
        """The repository as it may be shown: credentials masked."""
        return mask_location(self.repository)

    def secrets(self) -> list[str]:
        """What must never appear in output: a password carried by the URL."""
        return dotenv.secret_values({REPOSITORY_VAR: self.repository})


@dataclass(frozen=True)
class Snapshot:
    """One off-host copy: a snapshot of one environment's SQL, tagged by us."""

    id: str
    env: str
    stamp: str
    taken: datetime
    reason: str
    size: int  # of the local gzip file it was copied from

    @property
    def name(self) -> str:
        """The local backup file this copy is (or becomes, once fetched)."""
        return f"{self.env}_{self.stamp}.sql.gz"


def mask_location(text: str) -> str:
    """`rest:https://user:secret@host/` -> `rest:https://user:***@host/`; the rest as is."""
    return dotenv.mask_url_passwords(text)


def stdin_filename(env: str) -> str:
    """One stable file name per environment, so restic deduplicates day after day."""
    return f"stack-tui/{env}.sql"


# --- configuration ---------------------------------------------------------------------------


def settings(env_file: Path) -> dict[str, str]:
    """The STACK_OFFSITE_* settings: the process environment wins over `.env`."""
    try:
        values = dotenv.parse(env_file)
    except Refused:
        values = {}
    found = {key: values[key] for key in VARIABLES if values.get(key)}
    found.update({key: os.environ[key] for key in VARIABLES if os.environ.get(key)})
    return found


def load(env_file: Path) -> Config | None:
    """The configuration, or None when off (no repository set). Bad values refuse."""
    values = settings(env_file)
    repository = values.get(REPOSITORY_VAR, "")
    if not repository:
        return None
    password = values.get(PASSWORD_FILE_VAR, "")
    if not password:
        raise Refused(
            f"{REPOSITORY_VAR} is set but {PASSWORD_FILE_VAR} is not.",
            f"Put the repository's password in a file of mode 0600 and set "
            f"{PASSWORD_FILE_VAR} to its path in .env.",
        )
    password_file = Path(password)
    _check_password_file(password_file)
    keep = None
    raw_keep = values.get(KEEP_VAR, "")
    if raw_keep:
        if not raw_keep.isdigit() or int(raw_keep) < 1:
            raise Refused(
                f"{KEEP_VAR}={raw_keep!r} is not a positive whole number.",
                "Set it to how many off-host copies to keep per environment, e.g. 30.",
            )
        keep = int(raw_keep)
    ssh_config = None
    if values.get(SSH_CONFIG_VAR):
        ssh_config = Path(values[SSH_CONFIG_VAR])
        if not ssh_config.is_file():
            raise Refused(
                f"{SSH_CONFIG_VAR} names {ssh_config}, which is not a file.",
                "Point it at an ssh_config file, or remove the setting.",
            )
        if any(c.isspace() or c in "'\"\\" for c in str(ssh_config)):
            raise Refused(
                f"{SSH_CONFIG_VAR}: {ssh_config} has spaces or quotes in its path.",
                "Move the file to a plain path.",
            )
    return Config(repository, password_file, keep, ssh_config)


def require(env_file: Path) -> Config:
    """The configuration; NotConfigured when off-host copies are off."""
    config = load(env_file)
    if config is None:
        raise NotConfigured(
            "Off-host copies are not configured.",
            f"Set {REPOSITORY_VAR} and {PASSWORD_FILE_VAR} in .env, then run ./stack offsite init.",
        )
    return config


def _check_password_file(path: Path) -> None:
    try:
        info = path.stat()
    except OSError as err:
        raise Refused(
            f"{PASSWORD_FILE_VAR}: cannot read {path} ({err.strerror or err}).",
            "Create it with the repository's password, mode 0600.",
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise Refused(
            f"{PASSWORD_FILE_VAR}: {path} is not a regular file.",
            "Point it at the file holding the repository's password.",
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise Refused(
            f"{PASSWORD_FILE_VAR}: {path} is readable by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}).",
            f"Run: chmod 600 {shlex.quote(str(path))}",
        )
    if info.st_size == 0:
        raise Refused(
            f"{PASSWORD_FILE_VAR}: {path} is empty.", "Write the repository's password into it."
        )


# --- running restic --------------------------------------------------------------------------


def _base_command(config: Config) -> list[str]:
    command = ["restic", "--repo", config.repository, "--password-file", str(config.password_file)]
    ssh = _ssh_parts(config)
    if ssh:
        command += ["--option", f"sftp.command={' '.join(ssh)}"]
    return command


def _ssh_parts(config: Config) -> list[str]:
    """For an sftp: repository, our own ssh: never prompts (2 a.m. over SSH), checks host
    keys strictly, gives up on a dead host instead of hanging. [] for other repositories."""
    sftp = _SFTP.match(config.repository)
    if not sftp:
        return []
    parts = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=15",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=2",
    ]
    if config.ssh_config is not None:
        parts += ["-F", str(config.ssh_config)]
    if sftp.group("port"):
        parts += ["-p", sftp.group("port")]
    if sftp.group("user"):
        parts += ["-l", sftp.group("user")]
    return [*parts, sftp.group("host").strip("[]"), "-s", "sftp"]


def _ssh_says(config: Config) -> str:
    """What ssh itself says when restic could not start its SFTP session (restic does not
    reliably pass it on): a host key mismatch, a refused key, a refused connection."""
    try:
        probe = subprocess.run(
            _ssh_parts(config),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"ssh: {err}"
    return probe.stderr.decode(errors="replace")


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _RESTIC_OVERRIDES}
    env.setdefault("RESTIC_PROGRESS_FPS", "0.2")
    return env


@dataclass
class Run:
    """A finished restic command: its exit status and (masked) output."""

    code: int
    stdout: str
    stderr: str


def run(config: Config, args: Sequence[str]) -> Run:
    """Run `restic ARGS` to its end; raise OffsiteError (translated) unless it succeeded."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(
                [*_base_command(config), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_environment(),
                check=False,
            )
        except FileNotFoundError:
            raise _not_installed() from None
        done = Run(proc.returncode, _read(out, config), _read(err, config))
    if done.code != 0:
        raise translate(config, done.stderr)
    return done


class Upload:
    """`restic backup --stdin` fed by the caller: write(), then commit() or abort().

    restic saves a snapshot as soon as its input ends, and a pipe ends when its
    last writer is gone, also when our process is killed half-way. So restic runs
    under a guard (core/restic_guard.py) that holds a second copy of the pipe's
    write end and lets it go only on commit(); if commit() never comes (abort(),
    or our process died, even by SIGKILL), the guard kills restic before the
    input can end. A snapshot therefore exists only of a whole stream, and
    carries every tag, `verified=ok` included, from the start: one restic run
    per copy.
    """

    def __init__(self, config: Config, env: str, taken: datetime, tags: dict[str, str]) -> None:
        self.config = config
        self.sent = 0
        # closed by commit() or abort(), which every caller reaches
        self._out = tempfile.TemporaryFile()  # noqa: SIM115
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        tag_list = ",".join(f"{k}={v}" for k, v in {**tags, **COMPLETE}.items())
        command = [
            *_base_command(config),
            "backup",
            "--stdin",
            "--stdin-filename",
            stdin_filename(env),
            "--host",
            HOST,
            "--time",
            taken.strftime("%Y-%m-%d %H:%M:%S"),
            "--tag",
            tag_list,
            "--json",
        ]
        read_end, self._input = os.pipe()  # restic's stdin; both ends close-on-exec
        # restic reads a chunk, then hashes it without reading: a 64 KiB pipe would stop
        # our inflate meanwhile, a larger one lets the two run side by side.
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep 64 KiB
            fcntl.fcntl(self._input, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        control_read, self._control = os.pipe()
        try:
            self.guard = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    str(GUARD),
                    str(control_read),
                    str(self._input),
                    *command,
                ],
                stdin=read_end,
                stdout=self._out,
                stderr=self._err,
                pass_fds=(control_read, self._input),
                env=_environment(),
                start_new_session=True,  # a Ctrl-C reaches us, and we stop restic
            )
        except BaseException:
            for fd in (self._input, self._control):
                os.close(fd)
            self._close_files()
            raise
        finally:
            os.close(read_end)
            os.close(control_read)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._input, view) :]
        except BrokenPipeError:  # restic stopped: what it said explains why
            self._stop()
            failure = self._failure()
            self._close_files()
            raise failure from None
        self.sent += len(data)

    def commit(self) -> str:
        """End the input (every byte is in the pipe); restic saves the snapshot."""
        try:
            self._input = _closed(self._input)
            with contextlib.suppress(BrokenPipeError):
                os.write(self._control, restic_guard.COMMIT)
            self._control = _closed(self._control)
            code = self.guard.wait()
            summary = self._summary()
            if code != 0:
                failure = self._failure()
        finally:
            self._close_files()
        snapshot = str(summary.get("snapshot_id", ""))
        stored = summary.get("total_bytes_processed")
        if code == 0 and snapshot and stored == self.sent:
            return snapshot
        if snapshot:  # restic's status 3 ("some source data could not be read") saves one
            run(self.config, ["forget", snapshot])
        if code != 0:
            raise failure
        raise OffsiteError(  # never seen: restic read what the guard let through
            f"restic stored {stored} of the {self.sent} bytes sent; the copy is not counted.",
            "Run ./stack offsite push to send it again.",
        )

    def abort(self) -> None:
        """Stop restic before its input ended: no snapshot is saved. Safe to repeat."""
        self._stop()
        self._close_files()

    def _stop(self) -> None:
        self._control = _closed(self._control)  # ends without `commit`: the guard kills restic
        self.guard.wait()
        self._input = _closed(self._input)  # only now: restic is gone

    def _summary(self) -> dict[str, Any]:
        self._out.seek(0)
        summary: dict[str, Any] = {}
        for line in self._out.read().decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("message_type") == "summary":
                    summary = message
        return summary

    def _failure(self) -> StackError:
        code = self.guard.wait()
        if code == restic_guard.NOT_INSTALLED:
            return _not_installed()
        if code < 0:
            return OffsiteError(
                f"The upload to {self.config.shown} was killed (signal {-code}) before "
                "it was complete; restic saved nothing.",
                "Run ./stack offsite push to send it again.",
            )
        return translate(self.config, _read(self._err, self.config))

    def _close_files(self) -> None:
        for file in (self._out, self._err):
            if not file.closed:
                file.close()


@contextlib.contextmanager
def dump(config: Config, snapshot_id: str, env: str) -> Iterator[IO[bytes]]:
    """The SQL of one snapshot, streamed from `restic dump`; errors raised on exit."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                [*_base_command(config), "dump", snapshot_id, "/" + stdin_filename(env)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=_environment(),
                start_new_session=True,
            )
        except FileNotFoundError:
            raise _not_installed() from None
        assert proc.stdout is not None
        try:
            yield proc.stdout
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        if proc.wait() != 0:
            raise translate(config, _read(err, config))


def _closed(fd: int) -> int:
    """Close `fd` once (-1: already closed); a second close could hit another thread's file."""
    if fd >= 0:
        os.close(fd)
    return -1


def _read(file: IO[bytes], config: Config) -> str:
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - STDERR_KEPT))
    return redact(config, file.read().decode(errors="replace"))


def redact(config: Config, text: str) -> str:
    text = mask_location(text)
    for secret in config.secrets():
        text = text.replace(secret, "***")
    return text


def _not_installed() -> StackError:
    return StackError(
        "restic is not installed: off-host copies need it.",
        "Install it: apt-get install restic (0.14 or newer).",
    )


def translate(config: Config, stderr: str) -> OffsiteError:
    """restic's complaint as an error an operator can act on."""
    said = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = said[-1] if said else "no output"
    if "unable to start the sftp session" in stderr and _ssh_parts(config):
        ssh_said = [
            line.strip() for line in redact(config, _ssh_says(config)).splitlines() if line.strip()
        ]
        stderr = "\n".join([*ssh_said, stderr])
        last = ssh_said[-1] if ssh_said else last
    where = config.shown
    text = stderr.lower()
    if "wrong password" in text:
        return OffsiteError(
            f"The off-host repository {where} refuses the password in {config.password_file}.",
            f"Put the repository's password in {PASSWORD_FILE_VAR}'s file.",
        )
    if "already locked" in text:
        holder = next((line for line in said if "locked" in line), last)
        return OffsiteError(
            f"The off-host repository {where} is locked by another restic "
            f"process ({holder}). Nothing was changed.",
            "Wait for it to finish and try again (./stack offsite push); if no "
            "restic runs any more, remove the stale lock with 'restic unlock'.",
        )
    if "config file already exists" in text:
        return OffsiteError(
            f"{where} already holds a restic repository.",
            "Nothing was changed. Use it as it is (./stack offsite check).",
        )
    if "host key verification failed" in text:
        return OffsiteError(
            f"The SSH host key of {where} is not the one known.",
            "Check the server, then its line in the known_hosts file of "
            f"{SSH_CONFIG_VAR}; host keys are never accepted silently.",
        )
    if any(
        s in text
        for s in (
            "connection refused",
            "no route to host",
            "timed out",
            "could not resolve",
            "connection closed",
            "broken pipe",
            "unable to start the sftp session",
            "connection reset",
            "eof",
            "subprocess ssh",
            "ssh command exited",  # the sftp link's ssh died under restic
        )
    ):
        return OffsiteError(
            f"The off-host repository {where} is unreachable ({last}).",
            "Check the network and the server (ssh, the repository's path).",
        )
    if "is there a repository at the following location" in text:
        return OffsiteError(
            f"There is no restic repository at {where}.", "Create it with ./stack offsite init."
        )
    if "permission denied" in text or "read-only file system" in text:
        denied = next(
            line
            for line in reversed(said)
            if "permission denied" in line.lower() or "read-only" in line.lower()
        )
        return OffsiteError(
            f"The off-host repository {where} cannot be written ({denied}).",
            "Check its permissions (a read-only repository cannot take copies).",
        )
    if "no matching id" in text or "no snapshot" in text or "failed to find snapshot" in text:
        return OffsiteError(
            f"That off-host copy is not in {where} any more ({last}).",
            "List what is there: ./stack backup list --offsite.",
        )
    if "no space left" in text:
        return OffsiteError(
            f"The off-host repository {where} is full ({last}).",
            "Free space there, or keep fewer copies (STACK_OFFSITE_KEEP).",
        )
    return OffsiteError(f"restic failed on {where}: {last}", "See restic's message above.")


# --- snapshots ---------------------------------------------------------------------------------


def snapshots(config: Config, env: str | None = None) -> list[Snapshot]:
    """Our complete copies in the repository (of one env, or both), newest first."""
    found = [s for s in (parse_snapshot(raw) for raw in _listed(config, env)) if s is not None]
    if env is not None:
        found = [s for s in found if s.env == env]
    return sorted(found, key=lambda s: (s.stamp, s.id), reverse=True)


def _listed(config: Config, env: str | None) -> list[dict[str, Any]]:
    args = ["snapshots", "--json", "--host", HOST]
    if env is not None:
        args += ["--tag", f"env={env}"]
    listed: list[dict[str, Any]] = json.loads(run(config, args).stdout or "[]") or []
    return listed


def parse_snapshot(raw: dict[str, Any]) -> Snapshot | None:
    """A complete copy we wrote (its tags name env and stamp, and say every byte was
    stored); None for anything else."""
    tags = dict(tag.partition("=")[::2] for tag in raw.get("tags") or [])
    env, stamp = tags.get("env", ""), tags.get("stamp", "")
    try:
        taken = datetime.strptime(stamp, "%Y%m%d_%H%M%S")
    except ValueError:
        return None
    if env not in ("dev", "prod") or f"verified={tags.get('verified')}" != COMPLETE_TAG:
        return None
    size = tags.get("size", "0")
    return Snapshot(
        str(raw.get("id", "")),
        env,
        stamp,
        taken,
        tags.get("reason", ""),
        int(size) if size.isdigit() else 0,
    )


def refuse_if_read_only(config: Config) -> None:
    """A local repository that cannot be written, said at once: restic 0.14 would retry
    taking its lock for about 50 s without a word before failing the same way."""
    path = _local_path(config)
    if path is None or not (path / "locks").is_dir():
        return  # not local, or not a repository: restic says what is wrong
    try:
        os.close(os.open(path / "locks", os.O_TMPFILE | os.O_WRONLY, 0o600))  # never visible
    except OSError as err:
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise OffsiteError(
                f"The off-host repository {config.shown} cannot be written ({err.strerror}).",
                "Check its permissions and mount (a read-only repository cannot take copies).",
            ) from None
        # O_TMPFILE unsupported there, or something restic will name itself


def _local_path(config: Config) -> Path | None:
    """The directory of a local repository (a path, or local:path); None for a remote one."""
    location = config.repository
    if location.startswith("local:"):
        return Path(location.removeprefix("local:"))
    return Path(location) if location.startswith(("/", ".")) else None


def remove_stale_locks(config: Config) -> None:
    """`restic unlock`: only locks of restic processes that are gone from this host (or older
    than 30 minutes). restic 0.14 lets a dead upload's lock block the next forget."""
    run(config, ["unlock"])


def forget(config: Config, env: str, keep: int) -> str:
    """Keep `env`'s newest `keep` copies (never fewer than one), then prune the data."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    done = run(
        config,
        [
            "forget",
            "--host",
            HOST,
            "--tag",
            f"env={env},{COMPLETE_TAG}",
            "--group-by",
            "paths",
            "--keep-last",
            str(keep),
            "--prune",
        ],
    )
    return done.stdout
