"""Interactive sessions inside an environment: a shell in a service, psql on its database.

Typing `docker compose -p ... exec` by hand is where the wrong project, and so the wrong
environment, gets typed. Here the session is always built from the Environment: the
command line comes from core.compose (`-p` and `-f` always), the container is checked
through core.engine first (it exists, it runs, it has a shell), and PROD says so before
the first prompt. The front ends only print the banner and run the command with the
terminal attached (`run`): the CLI directly, the TUI inside `App.suspend()`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from stack_tui.core import audit, compose, engine, pg
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused, StackError

#: Tried in this order: an operator expects bash, but slim images only have sh.
SHELLS = ("bash", "sh")
POSTGRES_SERVICE = "postgres"
#: What a read-only psql session runs with: every transaction starts READ ONLY, so an
#: INSERT/UPDATE/DDL is refused by PostgreSQL itself ("cannot execute ... in a read-only
#: transaction"). A guard against slips, not against intent: `SET` can turn it off.
READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"


@dataclass(frozen=True)
class Session:
    """One interactive session, ready to run: what to print first and the command line."""

    env: Environment
    #: "shell" or "psql" (the audit line's operation).
    kind: str
    service: str
    #: What runs, in words ("bash in agent", "psql on agent_db as agent, read-only").
    what: str
    #: `compose` arguments (core.compose adds the binary, -p and -f): `exec ... SERVICE ARGV`.
    args: tuple[str, ...]
    #: A shell or psql to type into (not a one-off command): the banner says how to leave.
    interactive: bool = True

    def banner(self, styled: bool = False) -> str:
        """Printed before the session starts: which environment (PROD unmissable), what runs,
        and how to get back."""
        tag = " PROD " if self.env.is_prod else " dev "
        if styled:
            colour = "" if os.environ.get("NO_COLOR") else ";31"
            tag = f"\x1b[1;7{colour}m{tag}\x1b[0m"
        lines = [f"{tag} {self.env.project}: {self.what}"]
        if self.interactive:
            warning = "Every command runs in PRODUCTION. " if self.env.is_prod else ""
            lines.append(f"{warning}exit (or Ctrl-D) ends it and returns to where you were.")
        return "\n".join(lines) + "\n"


def running_container(client: Any, env: Environment, service: str) -> Any:
    """The service's running container in `env`; a StackError saying what is wrong (no such
    service, not deployed, not running) otherwise."""
    container = engine.service_container(client, env.project, service)
    if container is None:
        try:
            known = compose.service_names(env)
        except StackError:
            known = []
        if known and service not in known:
            raise Refused(
                f"{env.name} ({env.project}) has no service {service!r}.",
                f"Its services are: {', '.join(known)}.",
            )
        raise Refused(
            f"{service} has no container in {env.name} ({env.project}): it is not deployed.",
            f"Deploy {env.name} first (./stack {env.name} deploy, or d in the TUI).",
        )
    state = str(container.status)
    if state != "running":
        raise Refused(
            f"{service} in {env.name} ({env.project}) is not running (it is {state}).",
            f"Start it with a deploy of {env.name}, or read why it stopped in its logs "
            f"(./stack logs {'--dev ' if env.name == 'dev' else ''}{service}).",
        )
    return container


def find_shell(container: Any) -> str:
    """The first of SHELLS the container can run (probed with a no-op exec)."""
    for shell in SHELLS:
        if engine.exec_succeeds(container, [shell, "-c", "exit 0"]):
            return shell
    raise Refused(
        f"{container.name} has no shell (neither {' nor '.join(SHELLS)} runs in it).",
        "Run a command that exists in the image instead: ./stack shell SERVICE -- COMMAND.",
    )


def _exec(service: str, options: Sequence[str], argv: Sequence[str]) -> tuple[str, ...]:
    """`exec` with a terminal when we have one (-T when stdin is not a terminal: a script
    piping into `./stack shell SERVICE -- CMD`)."""
    terminal = () if sys.stdin.isatty() else ("-T",)
    return ("exec", *terminal, *options, service, *argv)


def shell(client: Any, env: Environment, service: str, command: Sequence[str] = ()) -> Session:
    """An interactive shell in `service` (bash, else sh), or `command` run there."""
    container = running_container(client, env, service)
    argv = list(command) if command else [find_shell(container)]
    what = f"{' '.join(argv)} in {service}"
    return Session(
        env,
        "shell",
        service,
        what,
        _exec(service, [], argv),
        interactive=not command,
    )


def psql(client: Any, env: Environment, *, read_only: bool) -> Session:
    """psql in the environment's PostgreSQL, on its own database as its superuser, named
    `stack-tui/psql/PID` in pg_stat_activity; read-only: every transaction READ ONLY."""
    container = running_container(client, env, POSTGRES_SERVICE)
    user = pg.postgres_user(container)
    options = ["-e", f"PGAPPNAME={pg.application_name('psql')}"]
    if read_only:
        options += ["-e", f"PGOPTIONS={READ_ONLY_OPTIONS}"]
    what = f"psql on {env.db_name} as {user}" + (", read-only" if read_only else "")
    return Session(
        env,
        "psql",
        POSTGRES_SERVICE,
        what,
        _exec(POSTGRES_SERVICE, options, ["psql", "-U", user, "-d", env.db_name]),
    )


def run(platform: Platform, session: Session, out: TextIO, clear: bool = False) -> int:
    """Print the banner (on a cleared screen with `clear`: what was there before is not this
    session's), run the session with this terminal, audit it; its exit status."""
    compose.ready(session.env)  # refuse (no .env, a forbidden variable) before the banner
    if clear and out.isatty():
        out.write("\x1b[H\x1b[2J")
    out.write(session.banner(styled=out.isatty()))
    out.flush()
    started = time.time()
    code = compose.attached(session.env, *session.args)
    audit.record(
        platform.audit_log,
        operation=session.kind,
        env=session.env.name,
        arguments={"service": session.service, "what": session.what},
        result="ok" if code == 0 else "failed",
        started=started,
        detail=f"exit status {code}",
    )
    return code
