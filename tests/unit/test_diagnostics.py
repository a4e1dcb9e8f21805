"""Unexpected errors: a traceback in data/logs/stack.log (0600), one line on the terminal."""

from __future__ import annotations

import argparse
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack_tui import cli
from stack_tui.core import diagnostics
from stack_tui.core.environments import Platform
from stack_tui.core.logs import EngineLines

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    (tmp_path / ".env").write_text("DOMAIN=x\n")
    yield Platform(root=REPO, data_dir=tmp_path / "data", env_file=tmp_path / ".env")
    logger = logging.getLogger(diagnostics.LOGGER)
    for handler in list(logger.handlers):
        if not isinstance(handler, logging.NullHandler):
            logger.removeHandler(handler)
            handler.close()


def test_a_bug_is_one_line_on_the_terminal_and_a_traceback_in_the_log(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(options: argparse.Namespace, env_name: str, platform: Platform) -> int:
        raise RuntimeError("boom in dispatch")

    monkeypatch.setattr(cli, "dispatch", broken)
    assert cli.main(["status", "--dev"], platform=platform) == cli.EXIT_FAILED
    said = capsys.readouterr()
    assert "Traceback" not in said.out + said.err
    assert "Unexpected error: RuntimeError: boom in dispatch" in said.err
    log = platform.logs_dir / diagnostics.FILE_NAME
    assert str(log) in said.err
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: boom in dispatch" in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_log_stream_the_engine_broke_raises_and_one_we_closed_ends_quietly() -> None:
    def stream() -> Iterator[bytes]:
        yield b"2026-12-01T10:00:00.5Z first line\n"
        raise ConnectionResetError("engine went away")

    lines = EngineLines(stream(), "agent", [])
    with pytest.raises(ConnectionResetError):
        list(lines)
    assert [line.text for line in EngineLines(iter([b"x\n"]), "agent", [])] == ["x"]
