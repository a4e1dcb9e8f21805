"""One environment as one operation sees it: `.env` read once, guarded, its secrets known.

The runner makes it before the operation's body runs and passes it on, so a
deploy reads `.env` and runs the project-name guard once, and every Compose
call, check and redaction sees the same values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from stack_tui.core import dotenv, guard
from stack_tui.core.environments import Environment


@dataclass(frozen=True)
class Prepared:
    env: Environment
    #: `.env` as Compose reads it; empty when there is no `.env` (Compose calls refuse then).
    values: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: What `redact` hides: whole secret values and their encoded forms, longest first.
    secrets: tuple[str, ...] = ()

    @property
    def has_env_file(self) -> bool:
        return self.env.env_file.exists()

    def redact(self, text: str) -> str:
        return dotenv.redact(text, list(self.secrets))

    @property
    def settings(self) -> dict[str, str]:
        """Where stack-tui's own settings (STACK_LOCK_TIMEOUT, ...) are read: `.env`, with the
        process environment over it, as Compose reads variables."""
        return {**self.values, **os.environ}


def prepare(env: Environment, environ: Mapping[str, str] | None = None) -> Prepared:
    """Read `.env` (if there is one) and refuse a forbidden variable in it or in `environ`."""
    values = dotenv.parse(env.env_file, environ) if env.env_file.exists() else {}
    guard.check(env.env_file, environ, values=values)
    return Prepared(env, MappingProxyType(values), tuple(dotenv.secret_values(values)))
