"""Restore a backup into an environment's database: all or nothing.

Order: validate the file (nothing touches the database until it passes),
confirm, take a safety backup, then load the dump in one transaction.

The load pipes the decompressed dump into `docker exec -i CONTAINER psql -X
-v ON_ERROR_STOP=1` (a subprocess, no shell; docker-py has no supported way to
feed an exec's stdin). It does not use `psql --single-transaction`: that
commits at the end of input, and when the feeding side dies (Ctrl-C, a kill,
the engine dropping the connection) psql sees the input end early and commits
a partial restore, even one cut in the middle of a COPY. Instead we send
BEGIN first and COMMIT only after the whole file was read and checked again
(gzip CRC, dump-complete trailer) on its way in. Any early end leaves the
transaction open and PostgreSQL rolls it back when psql goes away; an SQL
error stops psql (ON_ERROR_STOP) with the same effect. Either way the
database is exactly as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import requests

from stack_tui.core import backups, engine
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused, StackError
from stack_tui.ops import offsite
from stack_tui.ops.backup import (
    PROGRESS_BYTES,
    backup_steps,
    postgres_user,
    running_postgres,
)
from stack_tui.ops.events import (
    ConfirmationNeeded,
    Event,
    OutputLine,
    Result,
    StepFinished,
    StepStarted,
)
from stack_tui.ops.runner import locked

PSQL_LINES_KEPT = 40
PIPE_SIZE = 1 << 20
PSQL_SCRIPT_ERROR = 3  # psql's exit status when ON_ERROR_STOP stopped the script


def restore(
    platform: Platform,
    env: Environment,
    file: Path,
    *,
    allow_cross_env: bool = False,
    allow_outside: bool = False,
) -> Iterator[Event]:
    """Restore `file` into `env`'s database under its lock (see the module docstring)."""
    arguments = {
        "file": str(file),
        "allow_cross_env": allow_cross_env,
        "allow_outside": allow_outside,
    }
    return offsite.copy_after(
        platform,
        env,
        locked(
            platform,
            env,
            "restore",
            arguments,
            lambda: _restore(platform, env, Path(file), allow_cross_env, allow_outside),
        ),
        reason="pre-restore",
    )


def check_file(
    platform: Platform, env: Environment, file: Path, *, allow_cross_env: bool, allow_outside: bool
) -> tuple[Path, str]:
    """The real path of a restorable file and the env it is a backup of; Refused otherwise.

    Checks everything but the content: existence, type, size, place (after
    resolving symlinks), name, and which environment it belongs to.
    """
    if not os.path.lexists(file):
        raise Refused(f"No such file: {file}.", "List the backups with ./stack backup list.")
    try:
        path = file.resolve(strict=True)
    except (OSError, RuntimeError):
        raise Refused(
            f"{file} is a symbolic link to a file that does not exist.",
            "List the backups with ./stack backup list.",
        ) from None
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise Refused(f"{file} is not a regular file.", "Give the path of a backup file.")
    if info.st_size == 0:
        raise Refused(
            f"{file} is empty (0 bytes): it is not a backup.",
            "Pick another one from ./stack backup list.",
        )
    home = platform.backups_dir.resolve()
    if path.parent != home and not allow_outside:
        where = f"is a symbolic link to {path}, " if file.is_symlink() else "is "
        raise Refused(
            f"{file} {where}outside {home}: refusing to restore from there.",
            f"Copy it into {home}, or pass --allow-outside if you mean it.",
        )
    parsed = backups.parse_name(path.name)
    if parsed is None:
        raise Refused(
            f"{path.name} is not a backup's name (expected {env.name}_YYYYMMDD_HHMMSS.sql.gz).",
            "Only files written by ./stack backup, under their own names, are restored.",
        )
    source_env = parsed[0]
    if source_env != env.name and not allow_cross_env:
        flag = "--allow-dev-into-prod" if env.is_prod else "--allow-cross-env"
        raise Refused(
            f"{path.name} is a backup of {source_env}: refusing to restore it into {env.name}.",
            f"To load {source_env}'s data into {env.name} on purpose, add {flag} "
            "(you will be asked to confirm).",
        )
    return path, source_env


def _restore(
    platform: Platform, env: Environment, file: Path, allow_cross_env: bool, allow_outside: bool
) -> Iterator[Event]:
    try:
        yield from _restore_file(platform, env, file, allow_cross_env, allow_outside)
    except OSError as err:  # a hung engine (requests' errors are OSErrors) or the filesystem
        if isinstance(err, requests.RequestException):
            raise engine.unreachable(err) from None
        where = f" ({err.filename})" if err.filename else ""
        raise StackError(
            f"The restore stopped: {err.strerror or err}{where}.",
            "Check the file and the disk, then try again.",
        ) from None


def _open_checked(path: Path) -> BinaryIO:
    """Open the file `check_file` accepted; O_NOFOLLOW: it cannot have become a symlink since."""
    try:
        return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")
    except OSError as err:
        raise Refused(
            f"Cannot open {path}: {err.strerror or err}.", "Check the file's permissions."
        ) from None


def _restore_file(
    platform: Platform, env: Environment, file: Path, allow_cross_env: bool, allow_outside: bool
) -> Iterator[Event]:
    started = time.monotonic()
    yield StepStarted(env.name, "validate", detail=str(file))
    try:
        path, source_env = check_file(
            platform, env, file, allow_cross_env=allow_cross_env, allow_outside=allow_outside
        )
        source = _open_checked(path)
    except StackError as err:
        yield StepFinished(env.name, "validate", ok=False, detail=err.message)
        raise
    with source:
        verification = backups.verify_stream(source)
        if not verification.ok:
            message = f"{path.name} cannot be restored: {verification.reason}."
            yield StepFinished(env.name, "validate", ok=False, detail=message)
            raise Refused(
                message, "Nothing was changed. Pick another backup (./stack backup list --verify)."
            )
        validated = time.monotonic()
        yield StepFinished(
            env.name,
            "validate",
            detail=f"gzip intact, dump complete, "
            f"{backups.human_size(verification.sql_bytes)} of SQL",
        )
        client = engine.client()
        try:
            container = running_postgres(client, env, "there is no database to restore into")
        finally:
            client.close()
        for question in _confirmations(platform, env, path, source_env):
            yield question
            if question.response is not True:
                yield Result(
                    env.name,
                    operation="restore",
                    ok=False,
                    summary="Restore cancelled: nothing was changed.",
                    data={"cancelled": True, "error": "Refused"},
                )
                return
        asked = time.monotonic()
        safety = yield from backup_steps(platform, env, reason="pre-restore safety")
        loading = time.monotonic()
        yield StepStarted(
            env.name,
            "restore",
            detail=f"{path.name} into {env.db_name} ({env.project}), in one transaction",
        )
        source.seek(0)
        try:
            yield from _load(env, container, source, verification.sql_bytes)
        except StackError as err:
            yield StepFinished(env.name, "restore", ok=False, detail=err.message)
            raise StackError(
                err.message,
                f"{err.hint} The safety backup {safety.name} holds "
                "the database as it was before this restore.",
            ) from None
    done = time.monotonic()
    yield StepFinished(env.name, "restore", detail=f"{done - loading:.1f} s")
    phases = {
        "validate": validated - started,
        "safety_backup": loading - asked,
        "restore": done - loading,
    }
    yield Result(
        env.name,
        operation="restore",
        ok=True,
        summary=f"Restored {path.name} into {env.db_name} ({env.project}) in "
        f"{phases['restore']:.1f} s (safety backup {safety.name} first).",
        data={
            "file": str(path),
            "database": env.db_name,
            # the time the operator took to answer is not the restore's
            "seconds": round(done - started - (asked - validated), 3),
            "safety_backup": str(safety),
            "phases": {k: round(v, 3) for k, v in phases.items()},
        },
    )


def _confirmations(
    platform: Platform, env: Environment, path: Path, source_env: str
) -> list[ConfirmationNeeded]:
    """What the operator must agree to: a cross-environment restore, then the restore itself."""
    asks = []
    if source_env != env.name:
        asks.append(
            ConfirmationNeeded(
                env.name,
                f"{path.name} is a backup of {source_env}. Load {source_env}'s data into {env.name}?",
                details=[
                    f"{env.name}'s database {env.db_name} will then hold {source_env}'s data."
                ],
                require_typing="prod" if env.is_prod else "",
            )
        )
    size = backups.human_size(path.stat().st_size)
    asks.append(
        ConfirmationNeeded(
            env.name,
            f"Restore {path.name} into {env.name}'s database {env.db_name}?",
            details=[
                f"File: {path} ({size}, a backup of {source_env}).",
                f"Into: database {env.db_name} of project {env.project} ({env.name}).",
                f"First a safety backup of {env.db_name} is written to {platform.backups_dir}.",
                "Then everything in the backup replaces what the database holds now, in one "
                "transaction: if anything fails, nothing changes.",
                "Tables created after the backup was taken, and not in it, are left as they are.",
            ],
            require_typing=env.name,
        )
    )
    return asks


def _load(env: Environment, container: Any, source: BinaryIO, total: int) -> Iterator[Event]:
    """Feed the dump to psql between our own BEGIN and COMMIT; raise if it did not commit."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise StackError(
            "The docker command-line client is not installed: it is needed to feed "
            "the dump to psql.",
            "Install it (apt-get install docker.io).",
        )
    command = [
        docker_cli,
        "exec",
        "-i",
        container.id,
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--no-password",
        "-U",
        postgres_user(container),
        "-d",
        env.db_name,
    ]
    with tempfile.TemporaryFile() as said:
        # Its own session: a Ctrl-C reaches us only, and we decide how psql stops.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=said,
            start_new_session=True,
        )
        try:
            _widen(proc.stdin)
            complete = yield from _feed(env, proc, source, total)
            code = proc.wait()
        except BaseException:
            proc.kill()  # the connection drops before COMMIT: PostgreSQL rolls back
            proc.wait()
            raise
        lines = _tail(said)
    for line in lines:
        yield OutputLine(env.name, line, source="psql")
    if code == 0 and complete:
        return
    reason = next((line for line in lines if "ERROR" in line), lines[-1] if lines else "")
    detail = f": {reason}" if reason else ""
    if not complete or code == PSQL_SCRIPT_ERROR:
        raise StackError(
            f"The restore failed (psql exit status {code}){detail}. The transaction "
            f"was rolled back: {env.db_name} is exactly as it was.",
            "Fix the cause shown above and restore again.",
        )
    raise StackError(
        f"psql exited with status {code} after the whole dump was sent{detail}.",
        f"Check {env.db_name} before using it.",
    )


def _feed(
    env: Environment, proc: subprocess.Popen[bytes], source: BinaryIO, total: int
) -> Generator[Event, None, bool]:
    """Write BEGIN, the dump and COMMIT to psql; return False if psql stopped reading early."""
    assert proc.stdin is not None
    fed = 0
    next_progress = PROGRESS_BYTES
    try:
        proc.stdin.write(b"BEGIN;\n")
        for piece in backups.inflate(source):
            proc.stdin.write(piece)
            fed += len(piece)
            if fed >= next_progress:
                next_progress += PROGRESS_BYTES
                percent = f" ({100 * fed // total} %)" if total else ""
                yield OutputLine(
                    env.name,
                    f"{backups.human_size(fed)} of SQL restored{percent}",
                    source="restore",
                )
        proc.stdin.write(b"\nCOMMIT;\n")
        proc.stdin.close()
    except BrokenPipeError:  # psql stopped at an error; what it said explains why
        _close_quietly(proc.stdin)
        return False
    except backups.InvalidBackup as err:
        raise StackError(
            f"The file changed after it was validated ({err.message}); nothing was committed.",
            "Do not modify backups while restoring.",
        ) from None
    return True


def _widen(pipe: IO[bytes] | None) -> None:
    """Give the pipe to psql 1 MiB of buffer (64 KiB by default), so that psql never
    waits while we inflate the next piece. Best effort: the size is capped by
    /proc/sys/fs/pipe-max-size."""
    if pipe is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _close_quietly(pipe: IO[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):
        pipe.close()


def _tail(output: IO[bytes]) -> list[str]:
    """The last lines psql wrote (bounded: a broken dump can make it print a lot)."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - 16384))
    text = output.read().decode(errors="replace")
    return [line for line in text.splitlines() if line.strip()][-PSQL_LINES_KEPT:]
