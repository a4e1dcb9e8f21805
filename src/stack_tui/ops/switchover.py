"""Switching an environment to another database, and repairing an interrupted switch.

The switch-over is the only moment the application is down during a restore
(or its undo), and its length does not depend on the database's size:

1. the services that use the database (those depending on postgres in the
   compose files, directly or not) are recorded in a journal, then stopped;
2. the database stops accepting connections and the sessions still on it are
   ended (the operator saw them and agreed before anything was stopped);
3. in ONE transaction the live database is renamed to the kept name and the
   incoming one to the live name, so a crash leaves either the old state or the
   new one, never an environment without its database;
4. the stopped services are started again and waited for; the journal goes.

A failure or an interruption before step 3 undoes 1-2 (connections allowed,
services started) and says so. Whatever a killed process left is found by
`repair_steps`, run first by every operation that touches the database.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import docker

from stack_tui.core import compose, engine, pg, switchover
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused, StackError
from stack_tui.core.prepared import Prepared
from stack_tui.ops import blocking
from stack_tui.ops.events import (
    Caution,
    ConfirmationNeeded,
    Event,
    OutputLine,
    StepFinished,
    StepStarted,
)

POSTGRES_SERVICE = "postgres"
#: How long the restarted services may take to become healthy again.
START_TIMEOUT = 120


class Declined(Refused):
    """The operator did not agree to end the sessions: nothing was switched."""


def dependents(target: compose.Target) -> list[str]:
    """Services that use the database: depending on postgres in the compose files, directly
    or through another service (openwebui through agent)."""
    services = compose.render_config(target).get("services", {})
    users: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, spec in services.items():
            needs = set((spec or {}).get("depends_on") or {})
            if name not in users and needs & (users | {POSTGRES_SERVICE}):
                users.add(name)
                grew = True
    return sorted(users)


def running_dependents(prepared: Prepared, client: docker.DockerClient) -> dict[str, Any]:
    """The dependents that run now, with their containers (only these are stopped)."""
    env = prepared.env
    found = {}
    for service in dependents(prepared):
        container = engine.service_container(client, env.project, service)
        if container is not None and container.status in ("running", "restarting"):
            found[service] = container
    return found


def _addresses(containers: dict[str, Any]) -> dict[str, str]:
    """Each container's IP addresses -> its service, to tell the application's sessions."""
    owners = {}
    for service, container in containers.items():
        networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        for network in networks.values():
            if network.get("IPAddress"):
                owners[network["IPAddress"]] = service
    return owners


def session_lines(sessions: list[pg.Backend], services: dict[str, Any]) -> list[str]:
    owners = _addresses(services)
    lines = []
    for backend in sessions:
        owner = owners.get(backend.client)
        note = f" [{owner}: stops first]" if owner else " [will be ended]"
        lines.append(backend.describe() + note)
    return lines


def switch_over(
    platform: Platform,
    prepared: Prepared,
    db: pg.Session,
    *,
    incoming: str,
    keep_as: str,
    services: dict[str, Any],
) -> Generator[Event, None, tuple[float, str]]:
    """Make `incoming` the environment's database, keeping the current one as `keep_as`.

    Returns how long the application was down (services stopped until healthy again)
    and "" or why the services did not come back (the switch itself happened).
    Raises Declined when the operator does not agree to end foreign sessions.
    """
    env = prepared.env
    live = env.db_name
    sessions = pg.sessions_on(db, live) if _exists(db, live) else []
    owners = _addresses(services)
    foreign = [s for s in sessions if s.client not in owners]
    if foreign:
        question = ConfirmationNeeded(
            env.name,
            f"End {len(foreign)} session(s) on {live} to switch {env.name} over?",
            details=[
                "Connected now:",
                *session_lines(sessions, services),
                f"Their open transactions are rolled back; {live} is renamed to {keep_as} "
                "with everything they committed.",
            ],
            require_typing="prod" if env.is_prod else "",
        )
        yield question
        if question.response is not True:
            raise Declined(
                f"The switch-over was not confirmed: {live} was not changed.",
                "Run the restore again when those sessions may be ended.",
            )
    journal = switchover.journal_path(platform.locks_dir, env.project)
    names = sorted(services)
    switchover.write_journal(journal, names)
    down = time.monotonic()
    blocked = False
    try:
        if names:
            yield StepStarted(env.name, "stop", f"stopping {', '.join(names)} for the switch-over")
            compose.run(prepared, "stop", *names)
            yield StepFinished(env.name, "stop")
        yield StepStarted(
            env.name, "switch", f"{incoming} becomes {live}; {live} is kept as {keep_as}"
        )
        if _exists(db, live):
            db.run(f"ALTER DATABASE {pg.ident(live)} WITH ALLOW_CONNECTIONS false")
            blocked = True
            yield from _end_sessions(env, db, live)
            rename = (
                f"BEGIN; ALTER DATABASE {pg.ident(live)} RENAME TO {pg.ident(keep_as)}; "
                f"ALTER DATABASE {pg.ident(keep_as)} WITH ALLOW_CONNECTIONS true; "
                f"ALTER DATABASE {pg.ident(incoming)} RENAME TO {pg.ident(live)}; COMMIT"
            )
        else:
            rename = f"ALTER DATABASE {pg.ident(incoming)} RENAME TO {pg.ident(live)}"
        for item in blocking.call(lambda: db.run(rename), db, env.name, "the rename"):
            if isinstance(item, Event):
                yield item
    except BaseException as stopped:
        # Nothing was switched: give the application back its database as it was.
        if blocked:
            with contextlib.suppress(StackError):
                db.run(f"ALTER DATABASE {pg.ident(live)} WITH ALLOW_CONNECTIONS true")
        failure = start_services(prepared, names, journal)
        if not isinstance(stopped, GeneratorExit):
            restarted = ""
            if names:
                restarted = (
                    f"; starting {', '.join(names)} again failed: {failure}"
                    if failure
                    else f"; {', '.join(names)} started again"
                )
            yield Caution(env.name, f"Nothing was switched: {live} is unchanged{restarted}.")
        raise
    yield StepFinished(env.name, "switch", detail=f"{incoming} is now {live}")
    if names:
        yield StepStarted(env.name, "start", f"starting {', '.join(names)} again")
    failure = start_services(prepared, names, journal)
    if names:
        yield StepFinished(env.name, "start", ok=not failure, detail=failure or "healthy")
    return time.monotonic() - down, failure


def _exists(db: pg.Session, database: str) -> bool:
    return bool(db.rows(f"SELECT 1 FROM pg_database WHERE datname = {pg.literal(database)}"))


def _end_sessions(env: Environment, db: pg.Session, database: str) -> Iterator[Event]:
    """Terminate every session on `database`; wait (bounded) until they are gone."""
    deadline = time.monotonic() + db.lock_timeout
    ended = db.rows(
        f"SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = {pg.literal(database)} AND pid <> pg_backend_pid()"
    )
    if ended:
        yield OutputLine(env.name, f"ended {len(ended)} session(s) on {database}", source="switch")
    while remaining := pg.sessions_on(db, database):
        if time.monotonic() > deadline:
            raise StackError(
                f"{len(remaining)} session(s) on {database} did not end within "
                f"{db.lock_timeout} s: " + "; ".join(r.describe() for r in remaining) + ".",
                "Nothing was switched. Find out why they do not end (pg_stat_activity), "
                "then run the restore again.",
            )
        time.sleep(0.1)  # termination is asynchronous; PostgreSQL offers nothing to wait on


def start_services(target: compose.Target, names: list[str], journal: Path) -> str:
    """Start the services a switch-over stopped and wait for their health; the journal goes
    once they run. Returns "" or what went wrong (never raises: it runs in cleanups)."""
    if names:
        try:
            compose.run(
                target,
                "up",
                "-d",
                "--no-deps",
                "--no-recreate",
                "--wait",
                "--wait-timeout",
                str(START_TIMEOUT),
                *names,
                timeout=START_TIMEOUT + 30,
            )
        except StackError as err:
            return err.message
    journal.unlink(missing_ok=True)
    return ""


# --- repair -------------------------------------------------------------------------------------


def repair_steps(
    platform: Platform, target: compose.Target, db: pg.Session
) -> Generator[Event, None, switchover.DatabaseState]:
    """Undo what an interrupted restore left (see core.switchover); return the state after."""
    env = target.env if isinstance(target, Prepared) else target
    journal = switchover.journal_path(platform.locks_dir, env.project)
    state = switchover.read_state(db, env.db_name, journal)
    if not state.problems:
        return state
    yield StepStarted(env.name, "repair", "; ".join(state.problems))
    if state.loading:
        drop_loading(db, env.db_name)
        yield Caution(
            env.name,
            f"Removed {switchover.loading_name(env.db_name)}, left by an "
            f"interrupted restore; {env.db_name} was not changed by it.",
        )
    if state.live and not state.accepting:
        db.run(f"ALTER DATABASE {pg.ident(env.db_name)} WITH ALLOW_CONNECTIONS true")
        yield Caution(
            env.name,
            f"{env.db_name} accepts connections again (an interrupted "
            "switch-over had blocked them).",
        )
    if state.journal:
        names = ", ".join(state.journal)
        failure = start_services(target, list(state.journal), journal)
        if failure:
            raise StackError(
                f"{names} were stopped by an interrupted switch-over and did not "
                f"start again: {failure}",
                "Look at their logs (./stack status), fix the cause and deploy.",
            )
        yield Caution(
            env.name, f"Started {names} again: an interrupted switch-over had stopped them."
        )
    yield StepFinished(env.name, "repair", detail="done")
    return switchover.read_state(db, env.db_name)


def drop_loading(db: pg.Session, database: str) -> None:
    """Drop `{db}__restoring` (ours), ending whatever is still connected to it."""
    db.run(f"DROP DATABASE IF EXISTS {pg.ident(switchover.loading_name(database))} WITH (FORCE)")
