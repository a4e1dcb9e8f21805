"""Restore drill: prove a backup restores, in a throwaway PostgreSQL, without touching the env.

The throwaway server runs the environment's own postgres image (the running
container's image, else the one its compose config names), with no network
(`network_mode=none`), its data on a tmpfs when it fits in half the free
memory (else on an anonymous volume), and durability off (`fsync=off`,
`wal_level=minimal`: nothing in it must survive). It is labelled with the
environment's project, so whatever a killed drill left behind is removed by
the next drill of that environment before it starts.

The dump is streamed in through `gzip -dc | docker exec -i ... psql -v
ON_ERROR_STOP=1` while this process reads the file alongside, and
`drills.DumpCounter` counts each COPY block's rows and collects the dump's
table of contents (bounded memory, and off the load's path). After the load, every table's
`count(*)` must equal its COPY block's rows and every schema object the dump
names must exist. The outcome is stored beside the backup (core/drills.py).

A drill never takes the environment's lock: it reads only the backup file. It
holds a lock of its own (`{project}.drill`) so that two drills of one
environment do not remove each other's server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import docker
import requests
from docker.types import Mount

from stack_tui.core import backups, compose, drills, endpoints, engine
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused, StackError
from stack_tui.core.pg import postgres_user
from stack_tui.ops.backup import PROGRESS_BYTES
from stack_tui.ops.events import (
    Drilled,
    Event,
    Outcome,
    OutputLine,
    Result,
    StepFinished,
    StepStarted,
)
from stack_tui.ops.runner import locked

#: Label on every throwaway container: the project of the environment it drills.
DRILL_LABEL = "org.stack-tui.drill-of"
PSQL_LINES_KEPT = 20
#: Durability is pointless in a server thrown away after the check. With wal_level=minimal
#: and the load in one transaction, COPY into a table created in that transaction skips
#: the WAL altogether; no checkpoint or autovacuum runs during the load.
SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "wal_init_zero=off",
    "max_wal_size=8GB",
    "checkpoint_timeout=1h",
    "autovacuum=off",
    "maintenance_work_mem=256MB",
)
#: The data goes on a tmpfs when the database (estimated at this many times the SQL) fits
#: in half the memory available; on an anonymous volume otherwise.
TMPFS_FACTOR = 3
FIELD_SEPARATOR = "\x1f"


class BackupFault(StackError):
    """The backup itself failed the drill (it does not restore, or restores wrongly)."""


@dataclass(frozen=True)
class Throwaway:
    container: Any
    user: str
    database: str


def drill(platform: Platform, env: Environment, file: Path | None) -> Iterator[Event]:
    """Drill `file` (None: `env`'s newest backup) and record the outcome beside it."""
    arguments = {"file": str(file) if file else "latest"}
    return locked(
        platform,
        env,
        "drill",
        arguments,
        lambda _prepared: _drill(platform, env, file),
        lock=f"{env.project}.drill",
    )


def choose(platform: Platform, env: Environment, file: Path | None) -> Path:
    """The backup to drill; Refused for a missing, foreign, misnamed or empty file."""
    if file is None:
        found = backups.list_backups(platform.backups_dir, env.name)
        if not found:
            raise Refused(
                f"{env.name} has no backups to drill.", f"Take one first ({_backup_command(env)})."
            )
        return found[0].path
    if not file.exists():
        raise Refused(f"No such file: {file}.", "List the backups with ./stack backup list.")
    path = file.resolve()
    parsed = backups.parse_name(path.name)
    if parsed is None or not path.is_file():
        raise Refused(
            f"{file} is not a backup file (expected {env.name}_YYYYMMDD_HHMMSS.sql.gz).",
            "Drill a file written by ./stack backup (see ./stack backup list).",
        )
    if parsed[0] != env.name:
        other = "--dev" if parsed[0] == "dev" else "--prod"
        raise Refused(
            f"{path.name} is a backup of {parsed[0]}, not of {env.name}.",
            f"Drill it as {parsed[0]}'s: ./stack backup drill {other} {file}",
        )
    if path.parent != platform.backups_dir.resolve():
        raise Refused(
            f"{file} is outside {platform.backups_dir}: its drill result would have "
            "no backup to belong to.",
            f"Copy it into {platform.backups_dir} first.",
        )
    if path.stat().st_size == 0:
        raise Refused(
            f"{file} is empty (0 bytes): it is not a backup.",
            "Pick another one from ./stack backup list.",
        )
    return path


def _backup_command(env: Environment) -> str:
    return "./stack backup" if env.is_prod else "./stack backup --dev"


def _drill(platform: Platform, env: Environment, file: Path | None) -> Iterator[Event]:
    started = time.monotonic()
    path = choose(platform, env, file)
    endpoint = endpoints.resolve(env)
    client = engine.client(120, endpoint)
    try:
        yield from _remove_leftovers(client, env)
        image, user = _image_and_user(client, env)
        # This machine's memory and disk say nothing about another host's (its Docker root
        # may well exist here too): there, an anonymous volume, and the load says a full disk.
        tmpfs = 0 if endpoint.remote else _tmpfs_size(client, path)
        if not tmpfs and not endpoint.remote:
            _check_space(client, path)
        where = "on a tmpfs" if tmpfs else "on an anonymous volume"
        yield StepStarted(
            env.name,
            "throwaway server",
            detail=f"{_image_name(client, image)}, no network, data {where}",
        )
        server = _start(client, image, user, env, tmpfs)
        try:
            _wait_ready(server)
            yield StepFinished(
                env.name, "throwaway server", detail=f"{server.container.name} ready"
            )
            record = yield from _load_and_check(env, server, path, image)
        finally:
            _remove(server.container)
    except OSError as err:
        if isinstance(err, requests.RequestException):
            raise engine.unreachable(err, endpoint) from None
        raise StackError(
            f"The drill stopped: {err.strerror or err}.",
            "Check the file and the disk, then try again.",
        ) from None
    finally:
        client.close()
    record = _with_total(record, time.monotonic() - started)
    drills.write(path, record)
    if record.ok:
        yield Result(
            env.name,
            operation="drill",
            outcome=Outcome.OK,
            summary=f"Drill of {path.name}: restored and checked in "
            f"{record.seconds:.1f} s ({record.tables} tables, {record.rows} rows, "
            f"{record.objects} schema objects).",
            payload=Drilled(str(path), record.seconds, record.total_seconds, record.rows),
        )
        return
    yield Result(
        env.name,
        operation="drill",
        outcome=Outcome.FAILED,
        summary=f"Drill of {path.name} FAILED: {record.reason}.",
        details=[
            *record.mismatches[:10],
            *record.missing[:10],
            "This backup is marked: retention never counts it as a good one.",
        ],
        payload=Drilled(str(path), record.seconds, record.total_seconds, record.rows),
    )


def _with_total(record: drills.DrillRecord, total: float) -> drills.DrillRecord:
    return replace(record, total_seconds=round(total, 3))


# --- the throwaway server ---------------------------------------------------------------------


def _remove_leftovers(client: docker.DockerClient, env: Environment) -> Iterator[Event]:
    """Remove throwaway servers of this env left by a killed drill (our drill lock is held)."""
    with engine.translated():
        found = client.containers.list(all=True, filters={"label": f"{DRILL_LABEL}={env.project}"})
    for container in found:
        _remove(container)
        yield OutputLine(
            env.name, f"removed {container.name}, left by an interrupted drill", source="drill"
        )


def _remove(container: Any) -> None:
    """Remove the container and its anonymous volume; gone already is fine."""
    with contextlib.suppress(docker.errors.NotFound), engine.translated():
        container.remove(force=True, v=True)


def _image_and_user(client: docker.DockerClient, env: Environment) -> tuple[str, str]:
    """The image the env's Postgres runs (or would run), and its POSTGRES_USER."""
    running = engine.service_container(client, env.project, "postgres")
    if running is not None:
        return str(running.attrs.get("Image", "")), postgres_user(running)
    service = (compose.render_config(env).get("services") or {}).get("postgres") or {}
    image = str(service.get("image", ""))
    environment = service.get("environment") or {}
    user = (
        str(environment.get("POSTGRES_USER") or "postgres")
        if isinstance(environment, dict)
        else "postgres"
    )
    if not image:
        raise Refused(
            f"{env.name}'s compose config names no postgres image.",
            "Check the postgres service in the compose files.",
        )
    with engine.translated():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise Refused(
                f"The postgres image {image} is not on this host, so there is "
                "nothing to drill with.",
                f"Deploy {env.name} once (it brings the image), or load the image "
                "(docker load), then drill again.",
            ) from None
    return image, user


def _image_name(client: docker.DockerClient, image: str) -> str:
    with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
        tags = client.images.get(image).tags
        if tags:
            return str(tags[0])
    return image[:19]


def _check_space(client: docker.DockerClient, path: Path) -> None:
    """Refuse early when the engine's disk cannot hold the SQL the dump expands to."""
    with engine.translated():
        root = str(client.info().get("DockerRootDir", ""))
    if not root or not os.path.isdir(root):
        return  # a remote engine: the load itself reports a full disk
    needed = _sql_size(path)
    free = shutil.disk_usage(root).free
    if needed and free < needed:
        raise StackError(
            f"The disk holding {root} has {backups.human_size(free)} free; restoring "
            f"{path.name} needs about {backups.human_size(needed)}.",
            "Free some space there (docker system df shows what Docker keeps), then drill again.",
        )


def _tmpfs_size(client: docker.DockerClient, path: Path) -> int:
    """Bytes of tmpfs to give the throwaway server, or 0 to use an anonymous volume: only
    on a local engine, and only when the restored database fits in half the free memory."""
    with engine.translated():
        root = str(client.info().get("DockerRootDir", ""))
    if not root or not os.path.isdir(root):
        return 0
    try:
        meminfo = Path("/proc/meminfo").read_text()
        available = int(meminfo.split("MemAvailable:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        return 0
    needed = _sql_size(path) * TMPFS_FACTOR
    return available // 2 if needed and needed < available // 2 else 0


def _sql_size(path: Path) -> int:
    """The uncompressed size gzip records in its trailer (modulo 4 GiB; 0 if unknown)."""
    try:
        with path.open("rb") as source:
            source.seek(-4, os.SEEK_END)
            size: int = struct.unpack("<I", source.read(4))[0]
    except (OSError, struct.error):
        return 0
    return size if size >= path.stat().st_size else 0


def _start(
    client: docker.DockerClient, image: str, user: str, env: Environment, tmpfs: int
) -> Throwaway:
    with engine.translated():
        pgdata = _pgdata(client, image)
        storage: dict[str, Any] = (
            {"tmpfs": {pgdata: f"size={tmpfs},mode=0700"}}
            if tmpfs
            else {"mounts": [Mount(target=pgdata, source=None, type="volume")]}
        )
        container = client.containers.create(
            image,
            command=["postgres", *(arg for s in SERVER_SETTINGS for arg in ("-c", s))],
            name=f"{env.project}-drill-{os.getpid()}-{secrets.token_hex(3)}",
            labels={DRILL_LABEL: env.project},
            network_mode="none",
            environment={
                "POSTGRES_PASSWORD": secrets.token_hex(16),
                "POSTGRES_USER": user,
                "POSTGRES_DB": env.db_name,
                "PGDATA": pgdata,
            },
            **storage,
        )
        try:
            container.start()
        except BaseException:
            _remove(container)
            raise
    return Throwaway(container, user, env.db_name)


def _pgdata(client: docker.DockerClient, image: str) -> str:
    for item in client.images.get(image).attrs.get("Config", {}).get("Env") or []:
        key, _, value = item.partition("=")
        if key == "PGDATA" and value:
            return str(value)
    return "/var/lib/postgresql/data"


def _wait_ready(server: Throwaway) -> None:
    """Until the initialised server accepts connections (not the entrypoint's set-up one).

    The server says so in its log: after the entrypoint's "init process complete", the
    next "ready to accept connections" is the server that stays (the set-up one before
    it listened on no TCP port and is gone)."""
    container = server.container
    seen = b""
    initialised = False
    with engine.translated():
        for chunk in container.logs(stream=True, follow=True):
            seen = (seen + chunk)[-4096:]
            if not initialised and b"init process complete" in seen:
                initialised = True
                seen = seen[seen.index(b"init process complete") :]
            if initialised and b"ready to accept connections" in seen:
                return
        container.reload()
        tail = container.logs(tail=5).decode(errors="replace").strip().splitlines()
    raise StackError(
        f"The throwaway PostgreSQL stopped while starting ({container.status}): "
        f"{tail[-1] if tail else 'no output'}.",
        "Check the postgres image (docker logs of a drill shows why).",
    )


# --- load and check ---------------------------------------------------------------------------


def _load_and_check(
    env: Environment, server: Throwaway, path: Path, image: str
) -> Generator[Event, None, drills.DrillRecord]:
    yield StepStarted(env.name, "load", detail=f"{path.name} with ON_ERROR_STOP")
    loading = time.monotonic()
    counter = drills.DumpCounter()
    failure = yield from _load(env, server, path, counter, _sql_size(path))
    if failure:
        yield StepFinished(env.name, "load", ok=False, detail=failure)
        return _failed(failure, time.monotonic() - loading, image)
    yield StepFinished(env.name, "load", detail=f"{time.monotonic() - loading:.1f} s")
    yield StepStarted(
        env.name,
        "check",
        detail=f"{len(counter.rows)} tables' rows, {len(counter.checked_objects)} schema objects",
    )
    mismatches = _compare_manifest(drills.read_manifest(path), counter.rows)
    mismatches += _compare_rows(server, counter.rows)
    try:
        missing = _missing_objects(server, counter.checked_objects)
    except BackupFault as err:
        missing = [err.message]
    seconds = round(time.monotonic() - loading, 3)
    problems = []
    if mismatches:
        problems.append(
            f"{len(mismatches)} table(s) with other row counts than the dump "
            f"carries ({mismatches[0]})"
        )
    if missing:
        problems.append(f"{len(missing)} schema object(s) missing after the load ({missing[0]})")
    yield StepFinished(
        env.name,
        "check",
        ok=not problems,
        detail="; ".join(problems) or "row counts and schema objects match",
    )
    return drills.DrillRecord(
        ok=not problems,
        reason="; ".join(problems),
        at=time.time(),
        seconds=seconds,
        image=image,
        tables=len(counter.rows),
        rows=sum(counter.rows.values()),
        objects=len(counter.checked_objects),
        mismatches=mismatches,
        missing=missing,
    )


def _failed(reason: str, seconds: float, image: str) -> drills.DrillRecord:
    return drills.DrillRecord(
        ok=False, reason=reason, at=time.time(), seconds=round(seconds, 3), image=image
    )


def _load(
    env: Environment, server: Throwaway, path: Path, counter: drills.DumpCounter, total: int
) -> Generator[Event, None, str]:
    """Load the dump while counting it; "" when it loaded, else why not.

    The load is `gzip -dc FILE | docker exec -i C psql`, two processes joined by a pipe,
    as fast as the raw pipeline; this process meanwhile reads the file a second time to
    count its COPY rows (on the other core), so Python never sits in the data's path.
    """
    gzip_cli, docker_cli = shutil.which("gzip"), shutil.which("docker")
    if gzip_cli is None or docker_cli is None:
        missing = "gzip" if gzip_cli is None else "docker"
        raise StackError(
            f"The {missing} command is not installed: the drill needs it to feed the dump to psql.",
            f"Install it (apt-get install {missing}).",
        )
    # One transaction: with wal_level=minimal, COPY into the tables it created writes no WAL.
    command = [
        docker_cli,
        "exec",
        "-i",
        server.container.id,
        "psql",
        "-X",
        "-q",
        "--single-transaction",
        "-v",
        "ON_ERROR_STOP=1",
        "--no-password",
        "-U",
        server.user,
        "-d",
        server.database,
    ]
    with tempfile.TemporaryFile() as said, path.open("rb") as source:
        # Their own sessions: a Ctrl-C reaches us only, and we stop them.
        unzip = subprocess.Popen(
            [gzip_cli, "-dc"],
            stdin=source,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        load = subprocess.Popen(
            command,
            stdin=unzip.stdout,
            stdout=subprocess.DEVNULL,
            stderr=said,
            env=endpoints.resolve(env).environ(),  # docker exec on the env's own engine
            start_new_session=True,
        )
        assert unzip.stdout is not None
        unzip.stdout.close()
        try:
            broken = yield from _count(env, path, counter, total)
            if broken:
                load.kill()
            code = load.wait()
            unzip.wait()
        except BaseException:
            load.kill()
            unzip.kill()
            raise
        finally:
            load.wait()
            unzip.wait()
        lines = _tail(said)
    if broken:
        return broken
    if code == 0:
        return ""
    for line in lines:
        yield OutputLine(env.name, line, source="psql")
    reason = next(
        (line for line in lines if "ERROR" in line or "FATAL" in line),
        lines[-1] if lines else f"psql exit status {code}",
    )
    if "No space left on device" in reason:
        raise StackError(
            f"The throwaway database ran out of disk space: {reason}",
            "Free space on the Docker engine's disk, then drill again (the backup was not marked).",
        )
    return f"the load stopped with an error: {reason}"


def _count(
    env: Environment, path: Path, counter: drills.DumpCounter, total: int
) -> Generator[Event, None, str]:
    """Count the dump's COPY rows; "" when the file is whole, else what is wrong with it."""
    counted = 0
    next_progress = PROGRESS_BYTES
    with path.open("rb") as source:
        try:
            for piece in backups.inflate(source):
                counter.feed(piece)
                counted += len(piece)
                if counted >= next_progress:
                    next_progress += PROGRESS_BYTES
                    percent = f" ({100 * counted // total} %)" if total else ""
                    yield OutputLine(
                        env.name,
                        f"{backups.human_size(counted)} of SQL counted"
                        f"{percent}; the load runs alongside",
                        source="drill",
                    )
        except backups.InvalidBackup as err:
            return f"the file is not a complete backup: {err.message}"
    return ""


def _tail(output: IO[bytes]) -> list[str]:
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - 8192))
    text = output.read().decode(errors="replace")
    return [line for line in text.splitlines() if line.strip()][-PSQL_LINES_KEPT:]


def _query(server: Throwaway, sql: str) -> list[list[str]]:
    with engine.translated():
        done = server.container.exec_run(
            [
                "psql",
                "-X",
                "-q",
                "-A",
                "-t",
                "-F",
                FIELD_SEPARATOR,
                "-v",
                "ON_ERROR_STOP=1",
                "--no-password",
                "-U",
                server.user,
                "-d",
                server.database,
                "-c",
                sql,
            ]
        )
    text = done.output.decode(errors="replace")
    if done.exit_code != 0:
        raise BackupFault(f"checking the loaded database failed: {text.strip()[-300:]}")
    return [line.split(FIELD_SEPARATOR) for line in text.splitlines() if line]


def _compare_manifest(recorded: dict[str, int] | None, carried: dict[str, int]) -> list[str]:
    """Tables whose rows in the file differ from those counted when the backup was taken."""
    if recorded is None:  # a backup from before manifests: the file is all there is
        return []
    return [
        f"{name}: backed up with {count} rows, the file carries {carried.get(name, 0)}"
        for name, count in recorded.items()
        if carried.get(name) != count
    ] + [f"{name}: not in the backup when it was taken" for name in carried if name not in recorded]


def _compare_rows(server: Throwaway, expected: dict[str, int]) -> list[str]:
    """ "table: dump N rows, loaded M" for every table whose count differs."""
    if not expected:
        return []
    names = list(expected)
    # The names are as pg_dump wrote them in its COPY lines: already quoted where needed. They
    # run in the throwaway server only, which has no network and is removed after the check.
    sql = " UNION ALL ".join(
        f"SELECT {i}, count(*) FROM ONLY {name}"  # noqa: S608
        for i, name in enumerate(names)
    )
    try:
        found = {int(i): int(n) for i, n in _query(server, sql)}
    except BackupFault as err:
        return [err.message]
    return [
        f"{name}: dump {expected[name]} rows, loaded {found.get(i, 0)}"
        for i, name in enumerate(names)
        if found.get(i) != expected[name]
    ]


_CATALOG = """
SELECT 'SCHEMA', '-', nspname FROM pg_namespace
UNION ALL SELECT CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'v' THEN 'VIEW'
  WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX'
  WHEN 'I' THEN 'INDEX' ELSE 'OTHER' END, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
UNION ALL SELECT 'FUNCTION', n.nspname, p.proname
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
UNION ALL SELECT 'CONSTRAINT', n.nspname, t.relname || ' ' || c.conname
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
  JOIN pg_class t ON t.oid = c.conrelid
UNION ALL SELECT 'TYPE', n.nspname, t.typname
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
"""


def _key(kind: str, schema: str, name: str) -> tuple[str, str, str]:
    if kind == "FK CONSTRAINT":
        kind = "CONSTRAINT"
    if kind == "FUNCTION":
        name = name.split("(", 1)[0]
    return kind, schema, name


def _missing_objects(server: Throwaway, expected: list[drills.SchemaObject]) -> list[str]:
    if not expected:
        return []
    present = {_key(*row) for row in _query(server, _CATALOG) if len(row) == 3}
    return [o.label() for o in expected if _key(o.kind, o.schema, o.name) not in present]
