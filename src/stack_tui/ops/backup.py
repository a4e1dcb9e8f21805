"""Back up an environment's database; prune old backups; list them.

`pg_dump` runs inside the environment's Postgres container through a low-level
docker-py exec without a TTY (a TTY would corrupt the dump and merge stderr
into it). Its output is compressed as it arrives and written under a hidden
temporary name in `data/backups/`, so memory stays flat whatever the size of
the database. The file becomes a backup only after pg_dump's exit status is 0,
the data is fsynced, and the written file passes `backups.verify` (gzip intact,
dump-complete trailer present); it is then linked to its final name (never
replacing a file) and the directory is fsynced. On any failure, or Ctrl-C,
the temporary file is removed and closing the exec's stream stops pg_dump.

The dump uses `--clean --if-exists`, so restoring it over a database that
already holds the same tables drops and recreates them (inside the restore's
transaction). Ownership and privileges are kept: a restore reproduces the
database as it was, and the restoring user is the cluster's POSTGRES_USER.

Compression level 1: on two cores the backup is bound by deflate, and level 6
costs about 2.5 times the CPU for files only a few per cent smaller
(docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import time
import zlib
from collections.abc import Generator, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import requests

from stack_tui.core import audit, backups, drills, endpoints, engine, identity, pg
from stack_tui.core.environments import ENV_NAMES, Environment, Platform
from stack_tui.core.errors import EngineUnreachable, Refused, StackError
from stack_tui.core.prepared import Prepared
from stack_tui.ops import blocking, offsite
from stack_tui.ops.events import (
    BackupTaken,
    Caution,
    Event,
    Outcome,
    OutputLine,
    Result,
    StepFinished,
    StepStarted,
    Waiting,
)
from stack_tui.ops.runner import locked
from stack_tui.ops.switchover import repair_steps

COMPRESS_LEVEL = 1
WRITE_BUFFER = 1 << 20
#: One progress line per this much SQL dumped.
PROGRESS_BYTES = 8 << 20
STDERR_KEPT = 16 << 10
#: How long to wait for dockerd to record the exit status once pg_dump's output has ended.
EXIT_STATUS_WAIT = 10.0


class NothingToBackUp(StackError):
    """The environment's Postgres container does not exist or is not running."""


def deploy_command(env: Environment) -> str:
    return "./stack deploy" if env.is_prod else f"./stack {env.name} deploy"


def running_postgres(client: docker.DockerClient, env: Environment, consequence: str) -> Any:
    """The env's running Postgres container; NothingToBackUp saying `consequence` otherwise."""
    container = engine.service_container(client, env.project, "postgres")
    state = "missing" if container is None else container.status
    if state != "running":
        raise NothingToBackUp(
            f"{env.name}'s Postgres container ({env.project}) is {state}, not running: "
            f"{consequence}.",
            f"Deploy {env.name} first ({deploy_command(env)}).",
        )
    return container


def backup_steps(
    platform: Platform, prepared: Prepared, *, reason: str, keep: int | None = None
) -> Generator[Event, None, Path]:
    """Dump the environment's database into a new, verified backup, prune to the newest `keep`
    (default: STACK_BACKUP_KEEP), and return its path. No lock taken: the caller holds it.
    Every backup counts for retention: manual, pre-deploy, scheduled."""
    env = prepared.env
    keep = backups.keep_setting() if keep is None else keep
    yield StepStarted(
        env.name, "backup", detail=f"{reason}: pg_dump of {env.db_name} ({env.project})"
    )
    started = time.monotonic()
    try:
        path = yield from _dump(platform, prepared)
    except StackError as err:
        yield StepFinished(env.name, "backup", ok=False, detail=err.message)
        raise
    size = path.stat().st_size
    yield StepFinished(
        env.name,
        "backup",
        detail=f"{path.name} ({backups.human_size(size)}) in {time.monotonic() - started:.1f} s",
    )
    yield from prune_steps(platform, env, keep=keep, written=path)
    return path


def _dump(platform: Platform, prepared: Prepared) -> Generator[Event, None, Path]:
    endpoint = endpoints.resolve(prepared)
    client = engine.client(endpoint=endpoint)
    try:
        return (yield from _dump_with(client, endpoint, platform, prepared))
    except EngineUnreachable:
        raise _engine_lost(endpoint) from None
    except OSError as err:
        if isinstance(err, requests.RequestException):  # requests' errors are OSErrors
            raise _engine_lost(endpoint) from None
        raise _write_error(err, platform.backups_dir) from None
    finally:
        client.close()


def _engine_lost(endpoint: endpoints.Endpoint) -> EngineUnreachable:
    """The engine stopped answering (its host gone from the network, its dockerd killed, the
    tunnel cut) before the dump was complete: said of this env's engine, by name."""
    return EngineUnreachable(
        f"{endpoint.describe()} stopped answering during the backup: nothing was kept "
        "(the partial file was removed); older backups are untouched.",
        f"Check that host and its dockerd (docker -H {endpoint.via or endpoint.host} info), "
        "then back up again.",
    )


def _dump_with(
    client: docker.DockerClient,
    endpoint: endpoints.Endpoint,
    platform: Platform,
    prepared: Prepared,
) -> Generator[Event, None, Path]:
    env = prepared.env
    container = running_postgres(client, env, "nothing to back up")
    db = pg.session(client, container, "backup", pg.lock_timeout_setting(prepared.settings))
    yield from repair_steps(platform, prepared, db)
    directory = backups.ensure_private_dir(platform.backups_dir)
    for stale in _remove_stale_partials(directory, env.name):
        yield OutputLine(
            env.name, f"removed {stale}, left by an interrupted backup", source="backup"
        )
    name = free_name(directory, env.name)
    partial = directory / backups.partial_name(name)
    waits: list[Waiting] = []
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # exact, whatever the umask
            command = [
                "pg_dump",
                "--clean",
                "--if-exists",
                "--no-password",
                f"--lock-wait-timeout={db.lock_timeout}s",
                "-U",
                db.user,
                env.db_name,
            ]
            with engine.translated():
                try:
                    exec_id = client.api.exec_create(
                        container.id,
                        command,
                        stdout=True,
                        stderr=True,
                        tty=False,
                        environment=db.environment("dump"),
                    )["Id"]
                    stream = client.api.exec_start(exec_id, stream=True, demux=True)
                except docker.errors.APIError as err:
                    raise StackError(
                        f"Docker could not start pg_dump: {err.explanation}.",
                        "Check the Postgres container (docker logs).",
                    ) from None
            watched = blocking.watched(_from_engine(stream, endpoint), db, env.name, "pg_dump")
            try:
                stderr = yield from _compress(env, watched, fd, directory, waits)
            except EngineUnreachable:
                watched.close()  # nothing to end on an engine that does not answer
                _close_stream(stream)
                raise
            except BaseException:
                # Unread output first: dockerd starts no other exec in the container while an
                # exec's output is neither drained nor closed. Then our backend: a pg_dump
                # queued behind a lock would outlive us otherwise.
                watched.close()  # its reader thread lets go of the stream
                _close_stream(stream)
                _end_ours(db)
                raise
            finally:
                # If we stopped early, dockerd kills pg_dump once its stream is gone.
                _close_stream(stream)
            try:
                os.fsync(fd)
            except OSError as err:
                raise _write_error(err, directory) from None
        finally:
            os.close(fd)  # unbuffered: closing never retries a failed write
        for line in stderr.decode(errors="replace").splitlines():
            yield OutputLine(env.name, line, source="pg_dump")
        _check_exit(client, endpoint, container, exec_id, stderr, waits)
        verification = backups.verify(partial)
        if not verification.ok:
            raise StackError(
                f"The dump failed verification: {verification.reason}.",
                "Nothing was kept; look at pg_dump's output above and try again.",
            )
        final = _publish(partial, directory / name)
    except BaseException as stopped:
        partial.unlink(missing_ok=True)
        if isinstance(stopped, KeyboardInterrupt):
            yield OutputLine(
                env.name,
                f"stopped: pg_dump's session ended, {partial.name} "
                "removed; older backups untouched",
                source="backup",
            )
        raise
    backups.remember_verified(final, verification)
    drills.write_manifest(final, dict(verification.rows))  # what a drill checks it against
    return final


def _from_engine(
    stream: Iterator[tuple[bytes | None, bytes | None]], endpoint: endpoints.Endpoint
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """The exec's output; a broken read (reset, or given up by keepalive when the network to
    the engine is gone: core.engine) is EngineUnreachable, never taken for a disk error."""
    try:
        with engine.translated(endpoint):
            yield from stream
    except OSError as err:  # this stream reads a socket, nothing else (an SSLError too)
        raise engine.unreachable(err, endpoint) from None


def _compress(
    env: Environment,
    stream: Iterator[tuple[bytes | None, bytes | None] | Event],
    fd: int,
    directory: Path,
    waits: list[Waiting],
) -> Generator[Event, None, bytes]:
    """Write pg_dump's stdout through gzip to `fd`; return (the end of) its stderr. Waiting
    events pass through (the last is kept in `waits` for the error message)."""
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, backups.GZIP_WBITS)
    packed: list[bytes] = []
    pending = 0
    stderr = b""
    dumped = 0
    next_progress = PROGRESS_BYTES
    for item in stream:
        if isinstance(item, Event):
            if isinstance(item, Waiting):
                waits[:] = [item]
            yield item
            continue
        data, errors = item
        if data:
            piece = compressor.compress(data)
            packed.append(piece)
            pending += len(piece)
            if pending >= WRITE_BUFFER:
                _write_all(fd, b"".join(packed), directory)
                packed.clear()
                pending = 0
            dumped += len(data)
            if dumped >= next_progress:
                next_progress += PROGRESS_BYTES
                yield OutputLine(
                    env.name, f"{backups.human_size(dumped)} of SQL dumped", source="backup"
                )
        if errors:
            stderr = (stderr + errors)[-STDERR_KEPT:]
    packed.append(compressor.flush())
    _write_all(fd, b"".join(packed), directory)
    return stderr


def _write_all(fd: int, data: bytes, directory: Path) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as err:
        raise _write_error(err, directory) from None


def _close_stream(stream: Any) -> None:
    """Close an exec's output stream. A connection that already broke cannot be shut down
    again, and one the reader thread still reads (pg_dump silent behind a lock) ends when
    our backend is terminated: nothing to do in either case."""
    with contextlib.suppress(OSError, ValueError, docker.errors.DockerException):
        stream.close()


def _end_ours(db: pg.Session) -> None:
    """Terminate our pg_dump's backend; best effort, in a cleanup."""
    with contextlib.suppress(StackError, docker.errors.DockerException, requests.RequestException):
        pg.end_backends_named(db, db.name)


def _write_error(err: OSError, directory: Path) -> StackError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return StackError(
            f"The disk holding {directory} is full: the backup could not be written "
            "(the partial file was removed; older backups are untouched).",
            "Free some space on that filesystem, then run the backup again.",
        )
    return StackError(
        f"Writing the backup into {directory} failed: {err.strerror or err}.",
        "Check the filesystem and the directory's permissions.",
    )


def _check_exit(
    client: docker.DockerClient,
    endpoint: endpoints.Endpoint,
    container: Any,
    exec_id: str,
    stderr: bytes,
    waits: list[Waiting],
) -> None:
    """Raise unless pg_dump exited with status 0."""
    said = stderr.decode(errors="replace").strip().splitlines()
    detail = f": {said[-1]}" if said else ""
    text = stderr.decode(errors="replace")
    if "could not obtain lock" in text or "lock timeout" in text or "statement timeout" in text:
        blockers = "; ".join(waits[-1].blockers) if waits else "a session that has since gone"
        bound = f"{waits[-1].bound:.0f} s" if waits else "its bound"
        raise StackError(
            f"pg_dump waited {bound} for a lock and gave up; nothing was kept. In the way: "
            f"{blockers}.",
            "Older backups are untouched. End that session or its transaction (or wait for it), "
            f"then back up again; {pg.LOCK_TIMEOUT_VARIABLE} sets the bound.",
        )
    try:
        code = _exit_status(client, exec_id)
    except docker.errors.NotFound:
        raise StackError(
            f"{endpoint.describe()} restarted during the dump; nothing was kept "
            "(older backups are untouched).",
            "Back up again once its containers are up (./stack status).",
        ) from None
    if code == 0:
        return
    with engine.translated():
        try:
            state = client.containers.get(container.id).status
        except docker.errors.NotFound:
            state = "removed"
    if state != "running":
        raise StackError(
            f"The Postgres container stopped ({state}) during the dump; nothing was kept.",
            "Older backups are untouched. Find out why it stopped (docker logs), then retry.",
        )
    if code is not None and code - 128 in signal.valid_signals():  # killed by that signal
        raise StackError(
            f"pg_dump was killed (signal {code - 128}) during the dump; nothing was kept.",
            "Older backups are untouched. The container was killed or ran out of memory: "
            "check it (docker inspect, docker logs), then retry.",
        )
    status = "no exit status" if code is None else f"exit status {code}"
    raise StackError(
        f"pg_dump failed ({status}){detail}; nothing was kept.", "Older backups are untouched."
    )


def _exit_status(client: docker.DockerClient, exec_id: str) -> int | None:
    """pg_dump's exit status; dockerd records it a moment after the output ends."""
    deadline = time.monotonic() + EXIT_STATUS_WAIT
    with engine.translated():
        while True:
            info = client.api.exec_inspect(exec_id)
            if not info.get("Running"):
                code = info.get("ExitCode")
                return None if code is None else int(code)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)  # no event to wait on: the engine only answers when asked


def _remove_stale_partials(directory: Path, env: str) -> list[str]:
    """Delete this env's temporary files left by a killed process (the env lock is ours):
    backups', and their manifests' and drill records' whose writer is gone."""
    removed = []
    for entry in directory.iterdir():
        name = entry.name
        if not (name.startswith(".") and name.endswith(".partial")):
            continue
        backup = name[1 : -len(".partial")]
        sidecar = drills.temporary_of(name)
        if sidecar is not None:
            backup, writer = sidecar
            if identity.running(writer):
                continue
        parsed = backups.parse_name(backup)
        if parsed is not None and parsed[0] == env:
            entry.unlink(missing_ok=True)
            removed.append(name)
    return removed


def free_name(directory: Path, env: str) -> str:
    """The backup name for now; if taken (two backups in one second), the next second's."""
    while True:
        now = datetime.now()
        name = backups.backup_name(env, now)
        if not os.path.lexists(directory / name):
            return name
        time.sleep(1 - now.microsecond / 1_000_000)


def _publish(partial: Path, final: Path) -> Path:
    """Give the verified file its backup name without ever replacing a file, durably."""
    try:
        os.link(partial, final)
    except FileExistsError:
        raise StackError(
            f"{final.name} appeared while the dump ran; nothing was overwritten.",
            "Another process writes backups here: run the backup again.",
        ) from None
    except OSError as err:
        raise _write_error(err, final.parent) from None
    partial.unlink()
    backups.fsync_dir(final.parent)
    return final


# --- the backup operation, retention, listing --------------------------------------------------


def backup(
    platform: Platform,
    env: Environment,
    *,
    keep: int = backups.DEFAULT_KEEP,
    reason: str = "manual",
    lock_wait: float = 0.0,
) -> Iterator[Event]:
    """Back up `env` under its lock, then prune to the newest `keep` good backups.

    `reason` is audited ("scheduled" for cron and systemd runs); `lock_wait` waits that
    long for a busy environment, then skips (ops.runner.locked)."""

    def body(prepared: Prepared) -> Iterator[Event]:
        if keep < 1:
            raise Refused(
                f"Keeping {keep} backups would delete them all.",
                "Keep at least 1 (STACK_BACKUP_KEEP or --keep).",
            )
        started = time.monotonic()
        path = yield from backup_steps(platform, prepared, reason=reason, keep=keep)
        seconds = time.monotonic() - started
        size = path.stat().st_size
        yield Result(
            env.name,
            operation="backup",
            outcome=Outcome.OK,
            summary=f"Backed up {env.db_name} to {path.name} "
            f"({backups.human_size(size)}) in {seconds:.1f} s.",
            payload=BackupTaken(str(path), size, round(seconds, 3)),
        )

    return offsite.copy_after(
        platform,
        env,
        locked(platform, env, "backup", {"keep": keep, "reason": reason}, body, wait=lock_wait),
        reason=reason,
    )


def prune_steps(
    platform: Platform, env: Environment, *, keep: int, written: Path | None = None
) -> Iterator[Event]:
    """Delete `env`'s backups older than its newest `keep` good ones, auditing each deletion.

    Run only after a successful backup. Backups are verified newest first until
    `keep` good ones are found, so a damaged file never counts as one of them.
    Never deleted: the backup just `written`, one a running restore reads (it
    holds a shared flock on it), and files dated in the future (check reports
    those; they never count as newest).
    """
    found = backups.list_backups(platform.backups_dir, env.name)
    if len(found) <= keep:
        return
    yield StepStarted(env.name, "prune", detail=f"keeping the newest {keep} good backups")
    checked = []
    good = 0
    now = time.time()
    for info in found:
        if good < keep and not backups.future_dated(info, now):
            info = replace(info, verified=backups.verify_cached(info.path).ok)
            good += backups.counts_as_good(info)
        checked.append(info)
    pruned = 0
    protected = {written} if written else set()
    for info in backups.plan_prune(checked, keep, now=now, protected=protected):
        started = time.time()
        arguments = {"file": info.name, "keep": keep}
        try:
            removed = _remove_unless_read(info.path)
        except OSError as err:
            audit.record(
                platform.audit_log,
                operation="prune",
                env=env.name,
                arguments=arguments,
                result="failed",
                started=started,
                detail=err.strerror or str(err),
            )
            yield Caution(env.name, f"Could not delete old backup {info.name}: {err.strerror}.")
            continue
        if not removed:
            yield OutputLine(
                env.name, f"kept {info.name}: a running restore reads it", source="prune"
            )
            continue
        pruned += 1
        audit.record(
            platform.audit_log,
            operation="prune",
            env=env.name,
            arguments=arguments,
            result="ok",
            started=started,
            detail=f"older than the newest {keep} good backups",
        )
        yield OutputLine(env.name, f"pruned {info.name}", source="prune")
    if pruned:
        backups.fsync_dir(platform.backups_dir)
    yield StepFinished(env.name, "prune", detail=f"{pruned} pruned, {len(found) - pruned} kept")


def _remove_unless_read(path: Path) -> bool:
    """Unlink `path` unless a restore holds its shared flock; False when it was kept."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        path.unlink()
        drills.forget(path)  # its drill record and row manifest go with it
        return True
    finally:
        os.close(fd)


def list_all(platform: Platform, verify: bool = False) -> dict[str, list[backups.BackupInfo]]:
    """Both environments' backups, newest first; with `verify`, each one read and checked."""
    listing = {}
    for name in ENV_NAMES:
        found = backups.list_backups(platform.backups_dir, name)
        if verify:
            found = [replace(b, verified=backups.verify_cached(b.path).ok) for b in found]
        listing[name] = found
    return listing
