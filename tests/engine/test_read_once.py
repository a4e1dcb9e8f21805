"""A deploy reads `.env` once: one prepared environment for the guard, every Compose call,
the status it ends with and redaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stack_tui.core import dotenv
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from support import drive, result_of

pytestmark = pytest.mark.engine


def test_a_deploy_reads_the_env_file_once(
    platform: Platform, engine_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []
    parse = dotenv.parse

    def counted(path: Path, environ: Any = None) -> dict[str, str]:
        reads.append(path)
        return parse(path, environ)

    monkeypatch.setattr(dotenv, "parse", counted)
    result = result_of(drive(deploy(platform, platform.dev, accept_new_volumes=True)))
    assert result.ok, (result.summary, result.details)
    assert reads.count(platform.dotenv) == 1, reads
