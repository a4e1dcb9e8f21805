"""The tool's own PostgreSQL sessions: named, bounded, and found again to be cancelled.

Every session the tool opens in an environment's Postgres container runs as
`docker exec psql|pg_dump` with `application_name` = `stack-tui/{operation}/{pid}`
and a `lock_timeout`, so that (1) no statement of ours ever waits on a lock
without a bound, (2) the operator can see who blocks whom in
`pg_stat_activity`, and (3) after Ctrl-C, a cancel or a SIGTERM our own
backends can be found by name and ended: nothing of ours stays queued in
PostgreSQL after the tool has said it stopped.

Queries run through docker-py's exec (psql's unaligned output with control
characters as separators); SQL text only ever embeds identifiers and literals
quoted by `ident` and `literal`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stack_tui.core import engine
from stack_tui.core.errors import Refused, StackError

if TYPE_CHECKING:
    import docker

APPLICATION_PREFIX = "stack-tui"
DEFAULT_LOCK_TIMEOUT = 10
LOCK_TIMEOUT_VARIABLE = "STACK_LOCK_TIMEOUT"
FIELD_SEPARATOR = "\x1f"
RECORD_SEPARATOR = "\x1e"
#: The database every maintenance statement connects to (never the one being switched).
MAINTENANCE_DB = "postgres"


class PgError(StackError):
    """A statement of ours failed; `sqlstate`-free: psql's message is what the operator reads."""


def lock_timeout_setting(environ: Mapping[str, str] | None = None) -> int:
    """Seconds any statement of ours may wait for a lock ($STACK_LOCK_TIMEOUT, default 10)."""
    raw = (os.environ if environ is None else environ).get(LOCK_TIMEOUT_VARIABLE, "")
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    if not raw.isdigit() or int(raw) < 1:
        raise Refused(
            f"{LOCK_TIMEOUT_VARIABLE}={raw!r} is not a positive whole number of seconds.",
            f"Set {LOCK_TIMEOUT_VARIABLE} to how long a lock may be waited for, e.g. 10.",
        )
    return int(raw)


def application_name(operation: str, pid: int | None = None) -> str:
    return f"{APPLICATION_PREFIX}/{operation}/{os.getpid() if pid is None else pid}"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A quoted SQL string literal (standard_conforming_strings is on in every supported PG)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Session:
    """How to reach one environment's cluster as its superuser, under one operation's name."""

    client: docker.DockerClient
    container: Any
    user: str
    operation: str
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT

    @property
    def name(self) -> str:
        return application_name(self.operation)

    def environment(self, role: str) -> dict[str, str]:
        """What every psql/pg_dump of ours runs with: `{name}/{role}` and the lock bound."""
        return {
            "PGAPPNAME": f"{self.name}/{role}",
            "PGOPTIONS": f"-c lock_timeout={self.lock_timeout}s",
        }

    def psql_command(self, database: str) -> list[str]:
        return [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--no-password",
            "-U",
            self.user,
            "-d",
            database,
        ]

    def rows(self, sql: str, database: str = MAINTENANCE_DB) -> list[list[str]]:
        """Run one statement and return its rows as text fields."""
        command = [
            *self.psql_command(database),
            "-A",
            "-t",
            "-F",
            FIELD_SEPARATOR,
            "-R",
            RECORD_SEPARATOR,
            "-c",
            sql,
        ]
        from docker.errors import APIError  # docker-py loads after the TUI's first frame

        with engine.translated():
            try:
                code, (stdout, stderr) = self.container.exec_run(
                    command, environment=self.environment("query"), demux=True
                )
            except APIError as err:
                raise PgError(
                    f"Docker could not run psql: {err.explanation}.",
                    "Check the Postgres container (docker logs).",
                ) from None
        if code != 0:
            said = (stderr or b"").decode(errors="replace").strip().splitlines()
            raise PgError(
                said[-1] if said else f"psql exited with status {code}",
                "Nothing was changed by that statement.",
            )
        text = (stdout or b"").decode(errors="replace").rstrip("\n")
        return [
            record.split(FIELD_SEPARATOR)
            for record in text.split(RECORD_SEPARATOR)
            if record.strip("\n")
        ]

    def run(self, *statements: str, database: str = MAINTENANCE_DB) -> None:
        """Run statements one by one, each in its own implicit transaction."""
        for statement in statements:
            self.rows(statement, database)

    def value(self, sql: str, database: str = MAINTENANCE_DB) -> str:
        found = self.rows(sql, database)
        return found[0][0] if found and found[0] else ""


def session(
    client: docker.DockerClient, container: Any, operation: str, lock_timeout: int | None = None
) -> Session:
    return Session(
        client,
        container,
        postgres_user(container),
        operation,
        lock_timeout_setting() if lock_timeout is None else lock_timeout,
    )


def postgres_user(container: Any) -> str:
    """POSTGRES_USER as the container was started with (the official image's default otherwise)."""
    for item in container.attrs.get("Config", {}).get("Env") or []:
        key, _, value = item.partition("=")
        if key == "POSTGRES_USER" and value:
            return str(value)
    return "postgres"


# --- who is there, who blocks -------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """One row of pg_stat_activity, as an operator needs to read it."""

    pid: int
    application: str
    client: str
    state: str
    seconds: int  # since the transaction started, else since the session started
    query: str

    def describe(self) -> str:
        app = self.application or "no application name"
        what = f", {self.query!r}" if self.query else ""
        return (
            f"pid {self.pid} ({app}, from {self.client}, {self.state or 'unknown state'} "
            f"for {self.seconds} s{what})"
        )


_BACKEND_COLUMNS = (
    "{a}.pid, coalesce({a}.application_name, ''), coalesce(host({a}.client_addr), 'local socket'),"
    " coalesce({a}.state, ''),"
    " extract(epoch FROM now() - coalesce({a}.xact_start, {a}.backend_start))::bigint,"
    " left(regexp_replace(coalesce({a}.query, ''), '\\s+', ' ', 'g'), 80)"
)


def _backends(rows: list[list[str]]) -> list[Backend]:
    return [Backend(int(r[0]), r[1], r[2], r[3], int(r[4] or 0), r[5]) for r in rows if len(r) >= 6]


def sessions_on(db: Session, database: str) -> list[Backend]:
    """Every client session connected to `database`, except our own query."""
    return _backends(
        db.rows(
            f"SELECT {_BACKEND_COLUMNS.format(a='a')} FROM pg_stat_activity a "
            f"WHERE a.datname = {literal(database)} AND a.pid <> pg_backend_pid() "
            "AND a.backend_type = 'client backend' ORDER BY a.backend_start"
        )
    )


def blockers_of(db: Session, name: str) -> list[Backend]:
    """The sessions that block any backend of ours whose name starts with `name`."""
    return _backends(
        db.rows(
            f"SELECT DISTINCT {_BACKEND_COLUMNS.format(a='b')} FROM pg_stat_activity w "
            "CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocking(pid) "
            "JOIN pg_stat_activity b ON b.pid = blocking.pid "
            f"WHERE w.application_name LIKE {_prefix_pattern(name)}"
        )
    )


def end_backends_named(db: Session, name: str) -> int:
    """Terminate every backend whose name starts with `name` (ours); how many there were."""
    return len(
        db.rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name LIKE {_prefix_pattern(name)} AND pid <> pg_backend_pid()"
        )
    )


def backends_named(db: Session, name: str) -> list[Backend]:
    """Backends whose name starts with `name`: what of ours is still there."""
    return _backends(
        db.rows(
            f"SELECT {_BACKEND_COLUMNS.format(a='a')} FROM pg_stat_activity a "
            f"WHERE a.application_name LIKE {_prefix_pattern(name)} AND a.pid <> pg_backend_pid()"
        )
    )


def _prefix_pattern(name: str) -> str:
    """LIKE pattern for `{name}/...`: every role of one operation of one process."""
    escaped = (name + "/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return literal(escaped + "%")
