"""Stop before anything runs when a variable could change the project name.

Compose reads COMPOSE_PROJECT_NAME from the environment and from `.env`; a
stray one silently points a deploy at new, empty volumes. STACK_PROJECT_NAME
was the old CLI's override. Both are refused, wherever they are found.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stack_tui.core import dotenv
from stack_tui.core.errors import Refused

FORBIDDEN_VARIABLES = ("COMPOSE_PROJECT_NAME", "STACK_PROJECT_NAME")


def forbidden_found(
    env_file: Path,
    environ: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
) -> list[str]:
    """Each forbidden variable and where it was found, as sentences. `values`: the file's,
    when the caller has read it already."""
    environ = os.environ if environ is None else environ
    found = [
        f"{name} is set in the process environment"
        for name in FORBIDDEN_VARIABLES
        if name in environ
    ]
    if values is None:
        values = dotenv.parse(env_file, environ) if env_file.exists() else {}
    found += [f"{name} is set in {env_file}" for name in FORBIDDEN_VARIABLES if name in values]
    return found


def check(
    env_file: Path,
    environ: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
) -> None:
    """Raise Refused naming every forbidden variable and where it is."""
    found = forbidden_found(env_file, environ, values)
    if found:
        raise Refused(
            "Refusing to run: " + "; ".join(found) + ".",
            "The project names are hardcoded (ai-agent-platform-dev / ai-agent-platform-prod) "
            "so data is never orphaned. Remove the variable (unset it, or delete the line "
            "from .env) and run again.",
        )
