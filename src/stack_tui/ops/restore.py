"""Restore a backup: the database becomes exactly the backup, and nothing committed is lost.

1. Validate the file (name, place, gzip, trailer, and content: core.dumpscan)
   before anything touches the cluster; check the volume has room for a second
   copy of the database.
2. Load it into a new database, `{db}__restoring`, owned by the environment's
   user, with ON_ERROR_STOP, while the application keeps serving from `{db}`.
   Any plain dump loads into an empty database: with or without --clean, with
   views depending on tables, and without the tables added since. Then every
   table's row count is compared with the rows the dump's COPY blocks carry,
   and the new database is analysed. A failed or interrupted load drops it:
   nothing else was touched.
3. Switch over (ops.switchover): the services that use the database stop, the
   sessions still on it are shown and, once agreed, ended, and the two names
   are swapped in one transaction. The database as it was a moment before is
   kept as `{db}__before_{stamp}`: taken after the writers stopped, so every
   committed write is in it; `./stack backup undo-restore` swaps it back.

The load pipes the dump into `docker exec -i CONTAINER psql` (docker-py has no
supported way to feed an exec's stdin): from `gzip -dc` reading the validated
file when it loads as it is, through us when a --clean preamble needs rewriting.
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
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import requests

from stack_tui.core import backups, dumpscan, endpoints, engine, pg, switchover
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused, StackError
from stack_tui.core.prepared import Prepared
from stack_tui.ops.backup import PROGRESS_BYTES, running_postgres
from stack_tui.ops.events import (
    Caution,
    ConfirmationNeeded,
    Event,
    Outcome,
    OutputLine,
    Restored,
    RestoreUndone,
    Result,
    StepFinished,
    StepStarted,
)
from stack_tui.ops.runner import locked
from stack_tui.ops.switchover import (
    Declined,
    drop_loading,
    repair_steps,
    running_dependents,
    session_lines,
    switch_over,
)

PSQL_LINES_KEPT = 40
#: How often the load says how far it is (and can be stopped between two).
PROGRESS_SECONDS = 1.0
PIPE_SIZE = 1 << 20
#: Room asked for beyond the restored database's size: WAL and the catalog.
SPACE_MARGIN = 64 << 20
SPACE_FACTOR = 1.1
#: Tables counted per query when the loaded rows are checked.
COUNTED_PER_QUERY = 200


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
    return locked(
        platform,
        env,
        "restore",
        arguments,
        lambda prepared: _guarded(
            _restore(platform, prepared, Path(file), allow_cross_env, allow_outside)
        ),
    )


def undo_restore(platform: Platform, env: Environment) -> Iterator[Event]:
    """Swap the newest `{db}__before_*` copy back in; the current database is kept in turn."""
    return locked(
        platform, env, "undo-restore", {}, lambda prepared: _guarded(_undo(platform, prepared))
    )


def repair(platform: Platform, env: Environment) -> Iterator[Event]:
    """Clean up what an interrupted restore left (also done first by every database operation)."""
    return locked(
        platform, env, "repair", {}, lambda prepared: _guarded(_repair(platform, prepared))
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


def _guarded(body: Iterator[Event]) -> Iterator[Event]:
    """An engine that stops answering, or the filesystem, as a StackError the operator reads."""
    try:
        yield from body
    except OSError as err:  # a hung engine (requests' errors are OSErrors) or the filesystem
        if isinstance(err, requests.RequestException):
            raise engine.unreachable(err) from None
        where = f" ({err.filename})" if err.filename else ""
        raise StackError(
            f"The operation stopped: {err.strerror or err}{where}.",
            "Check the file and the disk, then try again.",
        ) from None


def _open_checked(path: Path) -> BinaryIO:
    """Open the file `check_file` accepted (O_NOFOLLOW: it cannot have become a symlink since),
    with a shared flock that tells retention it is being read."""
    try:
        source = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")
    except OSError as err:
        raise Refused(
            f"Cannot open {path}: {err.strerror or err}.", "Check the file's permissions."
        ) from None
    fcntl.flock(source.fileno(), fcntl.LOCK_SH)
    return source


class _Cluster:
    """The environment's running Postgres, reached as its superuser under our name."""

    def __init__(self, prepared: Prepared, operation: str, consequence: str) -> None:
        self.client = engine.for_env(prepared)
        try:
            self.container = running_postgres(self.client, prepared.env, consequence)
            self.db = pg.session(
                self.client, self.container, operation, pg.lock_timeout_setting(prepared.settings)
            )
        except BaseException:
            self.client.close()
            raise

    def close(self) -> None:
        self.client.close()


def _restore(
    platform: Platform, prepared: Prepared, file: Path, allow_cross_env: bool, allow_outside: bool
) -> Iterator[Event]:
    env = prepared.env
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
        yield StepFinished(
            env.name,
            "validate",
            detail=(
                f"gzip intact, dump complete, {len(verification.rows)} tables, "
                f"{backups.human_size(verification.sql_bytes)} of SQL"
            ),
        )
        cluster = _Cluster(prepared, "restore", "there is no database to restore into")
        try:
            yield from _restore_into(
                platform, prepared, cluster, source, path, source_env, verification, started
            )
        finally:
            cluster.close()


def _restore_into(
    platform: Platform,
    prepared: Prepared,
    cluster: _Cluster,
    source: BinaryIO,
    path: Path,
    source_env: str,
    verification: backups.Verification,
    started: float,
) -> Iterator[Event]:
    env = prepared.env
    db = cluster.db
    state = yield from repair_steps(platform, prepared, db)
    if not state.live:
        raise Refused(
            f"{env.db_name} does not exist in {env.name}'s cluster.",
            f"Put the newest copy back first: {_command(env, 'undo-restore')}.",
        )
    yield from _check_space(env, db, verification.sql_bytes, state)
    services = running_dependents(prepared, cluster.client)
    sessions = pg.sessions_on(db, env.db_name)
    for question in _confirmations(platform, env, path, source_env, services, sessions, state):
        yield question
        if question.response is not True:
            yield Result(
                env.name,
                operation="restore",
                outcome=Outcome.CANCELLED,
                summary="Restore cancelled: nothing was changed.",
            )
            return
    asked = time.monotonic()
    loading = switchover.loading_name(env.db_name)
    keep_as = switchover.before_name(env.db_name, datetime.now())
    switched = False
    try:
        _create_like(db, loading, env.db_name)
        yield StepStarted(
            env.name,
            "load",
            f"{path.name} into {loading}, while {env.name} keeps serving from {env.db_name}",
        )
        source.seek(0)
        yield from _load(env, cluster, loading, source, verification.sql_bytes)
        loaded = time.monotonic()
        yield StepFinished(env.name, "load", detail=f"{loaded - asked:.1f} s")
        yield from _check_rows(env, db, loading, dict(verification.rows))
        checked = time.monotonic()
        downtime, failure = yield from switch_over(
            platform, prepared, db, incoming=loading, keep_as=keep_as, services=services
        )
        switched = True
    except BaseException as stopped:
        if not switched:
            yield from _abandon(env, db, loading, stopped)
        raise
    dropped = _drop_old_copies(db, env, switchover.keep_before_setting(prepared.settings))
    done = time.monotonic()
    phases = {
        "validate_and_check_space": asked - started,
        "load": loaded - asked,
        "check_rows": checked - loaded,
        "switch_over": downtime,
    }
    summary = (
        f"Restored {path.name} into {env.db_name} ({env.project}): "
        f"{env.name} was down {downtime:.1f} s. The database as it was is kept as "
        f"{keep_as} ({_command(env, 'undo-restore')} puts it back)."
    )
    details = [f"Dropped the older copy {name}." for name in dropped]
    if failure:
        details.insert(0, f"The services did not come back healthy: {failure}")
    yield Result(
        env.name,
        operation="restore",
        outcome=Outcome.FAILED if failure else Outcome.OK,
        summary=summary if not failure else f"{summary} But: the services are not healthy.",
        details=details,
        payload=Restored(
            file=str(path),
            database=env.db_name,
            kept_as=keep_as,
            seconds=round(done - started, 3),
            downtime=round(downtime, 3),
            phases={k: round(v, 3) for k, v in phases.items()},
        ),
    )


def _abandon(
    env: Environment, db: pg.Session, loading: str, stopped: BaseException
) -> Iterator[Event]:
    """Remove our half of an unfinished restore: our backends, then `{db}__restoring`."""
    try:
        pg.end_backends_named(db, db.name)
        drop_loading(db, env.db_name)
    except StackError as err:
        if not isinstance(stopped, GeneratorExit):
            yield Caution(
                env.name,
                f"Could not drop {loading}: {err.message} The next "
                f"operation on {env.name} drops it ({_command(env, 'repair')}).",
            )
        return
    if not isinstance(stopped, GeneratorExit):
        yield Caution(env.name, f"Dropped {loading}; {env.db_name} was not changed.")


def _command(env: Environment, subcommand: str) -> str:
    return f"./stack backup {subcommand}" + (" --dev" if env.name == "dev" else "")


def _create_like(db: pg.Session, new: str, like: str) -> None:
    """An empty database owned by the cluster's user, with `like`'s encoding and locale."""
    found = db.rows(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
        f"WHERE datname = {pg.literal(like)}"
    )
    options = ""
    if found:
        encoding, collate, ctype = found[0]
        options = (
            f" ENCODING {pg.literal(encoding)} LC_COLLATE {pg.literal(collate)}"
            f" LC_CTYPE {pg.literal(ctype)}"
        )
    db.run(
        f"CREATE DATABASE {pg.ident(new)} OWNER {pg.ident(db.user)} TEMPLATE template0" + options
    )


def _check_space(
    env: Environment, db: pg.Session, sql_bytes: int, state: switchover.DatabaseState
) -> Iterator[Event]:
    """Refuse before anything is created when the volume cannot hold a second copy."""
    directory = db.value("SHOW data_directory")
    code, output = db.container.exec_run(["df", "-Pk", directory])
    lines = output.decode(errors="replace").splitlines() if code == 0 else []
    fields = lines[-1].split() if len(lines) >= 2 else []
    if len(fields) < 4 or not fields[3].isdigit():
        yield Caution(env.name, f"Could not read the free space of {directory}; going on.")
        return
    free = int(fields[3]) * 1024
    need = int(max(sql_bytes, state.live_size) * SPACE_FACTOR) + SPACE_MARGIN
    if free < need:
        kept = "".join(f", {c.name} holds {backups.human_size(c.size)}" for c in state.copies)
        raise Refused(
            f"{env.name}'s Postgres volume has {backups.human_size(free)} free; the restored "
            f"database needs about {backups.human_size(need)} beside {env.db_name} "
            f"({backups.human_size(state.live_size)}{kept}). Nothing was changed.",
            "Free space on that volume (an older copy can go: DROP DATABASE in psql), "
            "then restore again.",
        )


def _confirmations(
    platform: Platform,
    env: Environment,
    path: Path,
    source_env: str,
    services: dict[str, Any],
    sessions: list[pg.Backend],
    state: switchover.DatabaseState,
) -> list[ConfirmationNeeded]:
    """What the operator must agree to: a cross-environment restore, then the restore itself."""
    asks = []
    if source_env != env.name:
        asks.append(
            ConfirmationNeeded(
                env.name,
                f"{path.name} is a backup of {source_env}. "
                f"Load {source_env}'s data into {env.name}?",
                details=[
                    f"{env.name}'s database {env.db_name} will then hold {source_env}'s data."
                ],
                require_typing="prod" if env.is_prod else "",
            )
        )
    size = backups.human_size(path.stat().st_size)
    stopped = ", ".join(services) or "no service (none running uses it)"
    details = [
        f"File: {path} ({size}, a backup of {source_env}).",
        f"Into: database {env.db_name} of project {env.project} ({env.name}).",
        f"1. The backup is loaded into a new database while {env.name} keeps serving.",
        f"2. Then a short switch-over: {stopped} stopped, the sessions still on "
        f"{env.db_name} ended, the databases swapped, the services started again.",
        f"{env.db_name} becomes exactly the backup: tables created since are not in it. "
        f"Its current state, with every committed write, is kept as a database "
        f"({_command(env, 'undo-restore')} swaps it back).",
    ]
    if state.copies:
        details.append(
            f"The older copy {state.copies[-1].name} is dropped once this restore "
            "succeeds (STACK_RESTORE_KEEP_BEFORE sets how many are kept)."
        )
    if sessions:
        details += [f"Connected to {env.db_name} now:", *session_lines(sessions, services)]
    asks.append(
        ConfirmationNeeded(
            env.name,
            f"Restore {path.name} into {env.name}'s database {env.db_name}?",
            details=details,
            require_typing=env.name,
        )
    )
    return asks


def _load(
    env: Environment, cluster: _Cluster, database: str, source: BinaryIO, total: int
) -> Iterator[Event]:
    """Feed the dump to psql connected to `database`; raise unless all of it loaded."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise StackError(
            "The docker command-line client is not installed: it is needed to feed "
            "the dump to psql.",
            "Install it (apt-get install docker.io).",
        )
    settings = [f"{key}={value}" for key, value in cluster.db.environment("load").items()]
    command = [
        docker_cli,
        "exec",
        "-i",
        *(x for s in settings for x in ("-e", s)),
        cluster.container.id,
        *cluster.db.psql_command(database),
    ]
    with tempfile.TemporaryFile() as said:
        if dumpscan.loads_as_is(backups.inflate(source)):
            source.seek(0)
            code, complete = yield from _pipe_through_gzip(env, command, source, said)
        else:  # a --clean preamble to rewrite: the SQL goes through us
            source.seek(0)
            code, complete = yield from _pipe_through_us(env, command, source, total, said)
        lines = _tail(said)
    for line in lines:
        yield OutputLine(env.name, line, source="psql")
    if code == 0 and complete:
        return
    reason = next((line for line in lines if "ERROR" in line), lines[-1] if lines else "")
    detail = f": {reason}" if reason else ""
    raise StackError(
        f"The load failed (psql exit status {code}){detail}. {env.db_name} was not touched.",
        "Fix the cause shown above and restore again.",
    )


def _pipe_through_gzip(
    env: Environment, command: list[str], source: BinaryIO, said: IO[bytes]
) -> Generator[Event, None, tuple[int, bool]]:
    """`gzip -dc < FILE | docker exec -i ... psql`: the raw pipeline's speed, Python out of the
    data's path. gzip reads the open file we validated (and hold a shared flock on) and checks
    its CRC; progress comes from where gzip has read to in that shared file description."""
    size = os.fstat(source.fileno()).st_size
    # Their own session: a Ctrl-C reaches us only, and we decide how they stop.
    inflater = subprocess.Popen(
        ["gzip", "-dc"], stdin=source, stdout=subprocess.PIPE, start_new_session=True
    )
    assert inflater.stdout is not None
    proc = subprocess.Popen(
        command,
        stdin=inflater.stdout,
        stdout=subprocess.DEVNULL,
        stderr=said,
        env=endpoints.resolve(env).environ(),  # docker exec on the env's own engine
        start_new_session=True,
    )
    _widen(inflater.stdout)
    inflater.stdout.close()
    try:
        next_report = time.monotonic()  # the first report says the load has begun
        while True:
            if time.monotonic() >= next_report:
                next_report += PROGRESS_SECONDS
                read = os.lseek(source.fileno(), 0, os.SEEK_CUR)
                yield OutputLine(
                    env.name,
                    f"{backups.human_size(read)} of {backups.human_size(size)} loaded "
                    f"({100 * read // max(size, 1)} %)",
                    source="restore",
                )
            try:
                code = proc.wait(timeout=PROGRESS_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
        inflated = inflater.wait()
    except BaseException:
        for child in (proc, inflater):
            child.kill()
            child.wait()
        raise
    return code, inflated == 0


def _pipe_through_us(
    env: Environment, command: list[str], source: BinaryIO, total: int, said: IO[bytes]
) -> Generator[Event, None, tuple[int, bool]]:
    # Its own session: a Ctrl-C reaches us only, and we decide how psql stops.
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=said,
        env=endpoints.resolve(env).environ(),  # docker exec on the env's own engine
        start_new_session=True,
    )
    try:
        _widen(proc.stdin)
        complete = yield from _feed(env, proc, source, total)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return code, complete


def _feed(
    env: Environment, proc: subprocess.Popen[bytes], source: BinaryIO, total: int
) -> Generator[Event, None, bool]:
    """Write the dump to psql; return False if psql stopped reading early (an SQL error)."""
    assert proc.stdin is not None
    fed = 0
    next_progress = 0  # the first report says the load has begun
    try:
        for piece in dumpscan.for_empty_database(backups.inflate(source)):
            if fed >= next_progress:
                next_progress += PROGRESS_BYTES
                percent = f" ({min(100, 100 * fed // total)} %)" if total else ""
                yield OutputLine(
                    env.name, f"{backups.human_size(fed)} of SQL loaded{percent}", source="restore"
                )
            proc.stdin.write(piece)
            fed += len(piece)
        proc.stdin.close()
    except BrokenPipeError:  # psql stopped at an error; what it said explains why
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        return False
    except backups.InvalidBackup as err:
        raise StackError(
            f"The file changed after it was validated ({err.message}).",
            "Do not modify backups while restoring.",
        ) from None
    return True


def _check_rows(
    env: Environment, db: pg.Session, database: str, expected: dict[str, int]
) -> Iterator[Event]:
    """Every table holds as many rows as the dump's COPY block for it; then ANALYZE."""
    yield StepStarted(env.name, "check", f"row counts of {len(expected)} tables, then ANALYZE")
    tables = sorted(expected)
    wrong = []
    for at in range(0, len(tables), COUNTED_PER_QUERY):
        chunk = tables[at : at + COUNTED_PER_QUERY]
        sql = " UNION ALL ".join(f"SELECT {pg.literal(t)}, count(*) FROM ONLY {t}" for t in chunk)
        for table, count in db.rows(sql, database):
            if int(count) != expected[table]:
                wrong.append(f"{table}: {count} rows loaded, {expected[table]} in the dump")
    if wrong:
        yield StepFinished(env.name, "check", ok=False, detail="; ".join(wrong[:5]))
        raise StackError(
            f"The loaded database does not match the dump: {'; '.join(wrong[:5])}.",
            f"Nothing was switched: {env.db_name} is unchanged.",
        )
    db.run("ANALYZE", database=database)
    yield StepFinished(env.name, "check", detail=f"{sum(expected.values())} rows as in the dump")


def _drop_old_copies(db: pg.Session, env: Environment, keep: int) -> list[str]:
    """Keep the newest `keep` copies (after a successful switch only)."""
    copies = switchover.read_state(db, env.db_name).copies
    dropped = []
    for old in copies[keep:]:
        try:
            db.run(f"DROP DATABASE IF EXISTS {pg.ident(old.name)} WITH (FORCE)")
        except StackError:
            continue
        dropped.append(old.name)
    return dropped


def _widen(pipe: IO[bytes] | None) -> None:
    """Give the pipe to psql 1 MiB of buffer (64 KiB by default), so that psql never
    waits while we inflate the next piece. Best effort: the size is capped by
    /proc/sys/fs/pipe-max-size."""
    if pipe is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _tail(output: IO[bytes]) -> list[str]:
    """The last lines psql wrote (bounded: a broken dump can make it print a lot)."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - 16384))
    text = output.read().decode(errors="replace")
    return [line for line in text.splitlines() if line.strip()][-PSQL_LINES_KEPT:]


# --- undo and repair ------------------------------------------------------------------------------


def _undo(platform: Platform, prepared: Prepared) -> Iterator[Event]:
    env = prepared.env
    cluster = _Cluster(prepared, "undo-restore", "there is no database to swap")
    try:
        db = cluster.db
        state = yield from repair_steps(platform, prepared, db)
        if not state.copies:
            raise Refused(
                f"There is no copy of {env.db_name} from before a restore to go back to.",
                "Copies are made by ./stack backup restore; ./stack status lists them.",
            )
        copy = state.copies[0]
        services = running_dependents(prepared, cluster.client)
        keep_as = switchover.before_name(env.db_name, datetime.now())
        current = (
            f"{env.db_name} as it is now is kept as {keep_as}: undoing again swaps it back."
            if state.live
            else f"{env.db_name} is missing: the copy takes its place."
        )
        question = ConfirmationNeeded(
            env.name,
            f"Put {env.name}'s database back as it was before the restore of "
            f"{copy.taken:%Y-%m-%d %H:%M:%S}?",
            details=[
                f"{copy.name} ({backups.human_size(copy.size)}) becomes {env.db_name}.",
                current,
                f"Stopped for the switch-over: {', '.join(services) or 'no service'}.",
            ],
            require_typing=env.name,
        )
        yield question
        if question.response is not True:
            yield Result(
                env.name,
                operation="undo-restore",
                outcome=Outcome.CANCELLED,
                summary="Undo cancelled: nothing was changed.",
            )
            return
        try:
            downtime, failure = yield from switch_over(
                platform, prepared, db, incoming=copy.name, keep_as=keep_as, services=services
            )
        except Declined as declined:
            raise Refused(declined.message, declined.hint) from None
    finally:
        cluster.close()
    yield Result(
        env.name,
        operation="undo-restore",
        outcome=Outcome.FAILED if failure else Outcome.OK,
        summary=f"{env.db_name} is back as it was before the restore ({copy.name}); "
        f"{env.name} was down {downtime:.1f} s."
        + (f" The restored state is kept as {keep_as}." if state.live else "")
        + (f" But the services are not healthy: {failure}" if failure else ""),
        payload=RestoreUndone(
            database=env.db_name,
            restored_from=copy.name,
            kept_as=keep_as,
            downtime=round(downtime, 3),
        ),
    )


def _repair(platform: Platform, prepared: Prepared) -> Iterator[Event]:
    env = prepared.env
    cluster = _Cluster(prepared, "repair", "there is no database to repair")
    try:
        state = yield from repair_steps(platform, prepared, cluster.db)
    finally:
        cluster.close()
    if not state.live:
        raise Refused(
            f"{env.db_name} is missing.",
            f"Put the newest copy back: {_command(env, 'undo-restore')}.",
        )
    yield Result(
        env.name,
        operation="repair",
        outcome=Outcome.OK,
        summary=f"{env.name}'s database {env.db_name} is in order.",
    )
