"""The CLI's argument handling: the spec's command lines, clear usage errors, exit codes."""

from __future__ import annotations

import pytest

from stack_tui import cli
from stack_tui.core import backups
from stack_tui.core.errors import Refused


@pytest.mark.parametrize(
    ("argv", "env", "command"),
    [
        (["deploy"], None, ["deploy"]),
        (["dev", "deploy"], "dev", ["deploy"]),
        (["backup", "--dev"], None, ["backup", "--dev"]),
        (["backup", "restore", "f.gz", "--dev"], None, ["backup", "restore", "f.gz", "--dev"]),
    ],
)
def test_leading_environment_word(argv: list[str], env: str | None, command: list[str]) -> None:
    assert cli.split_environment(argv) == (env, command)


def test_spec_command_lines_parse() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["backup", "--dev"]).env == "dev"
    assert parser.parse_args(["backup", "list"]).backup_command == "list"
    restore = parser.parse_args(
        ["backup", "restore", "data/backups/dev_20260223_172400.sql.gz", "--dev"]
    )
    assert (restore.backup_command, restore.env, str(restore.file)) == (
        "restore",
        "dev",
        "data/backups/dev_20260223_172400.sql.gz",
    )
    assert parser.parse_args(["deploy"]).env is None  # prod by default


@pytest.mark.parametrize("argv", [["staging", "deploy"], ["deploi"], ["dev", "launch"]])
def test_unknown_command_or_environment(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    error = capsys.readouterr().err
    assert "Unknown command or environment" in error
    assert "dev, prod" in error


def test_conflicting_environments(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dev", "deploy", "--prod"]) == cli.EXIT_USAGE
    assert "Conflicting environments" in capsys.readouterr().err


def test_help_lists_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "exit codes" in text and "130" in text


@pytest.mark.parametrize("sub", ["deploy", "status", "backup", "check", "tui"])
def test_every_command_has_help(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([sub, "--help"]) == 0
    assert "usage: stack" in capsys.readouterr().out


def test_backup_keep_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_BACKUP_KEEP", "7")
    assert backups.keep_setting() == 7
    monkeypatch.setenv("STACK_BACKUP_KEEP", "many")
    with pytest.raises(Refused, match="STACK_BACKUP_KEEP"):
        backups.keep_setting()
