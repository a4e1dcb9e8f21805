"""The CLI's argument handling: the spec's command lines, clear usage errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack_tui import cli
from stack_tui.core import backups
from stack_tui.core.environments import Platform
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
    assert parser.parse_args(["backup", "--dev"]).backup_env == "dev"
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


def test_a_parent_flag_holds_for_the_subcommand() -> None:
    """`./stack backup --dev restore FILE` restores into dev (it used to target prod)."""
    parser = cli.build_parser()
    for argv in (
        ["backup", "--dev", "restore", "f.sql.gz"],
        ["backup", "restore", "f.sql.gz", "--dev"],
        ["backup", "--dev", "restore", "f.sql.gz", "--dev"],
    ):
        options = parser.parse_args(argv)
        assert cli.parent_flag_error(options, None) == ""
        assert options.env == "dev", argv
    options = parser.parse_args(["backup", "--dev"])
    assert cli.parent_flag_error(options, None) == "" and options.env == "dev"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["backup", "--dev", "restore", "f.sql.gz", "--prod"], "Conflicting environments"),
        (["dev", "backup", "--prod", "restore", "f.sql.gz"], "Conflicting environments"),
        (["dev", "deploy", "--prod"], "Conflicting environments"),
        (["backup", "--dev", "list"], "'backup list' covers both environments"),
        (["dev", "backup", "list"], "'backup list' covers both environments"),
        (["dev", "check"], "'check' covers both environments"),
        (["backup", "--keep", "3", "restore", "f.sql.gz"], "--keep applies to taking a backup"),
        (["backup", "--keep", "3", "list"], "--keep applies to taking a backup"),
        (["--read-only", "deploy"], "--read-only applies to the TUI only"),
    ],
)
def test_a_parent_flag_that_cannot_hold_is_refused(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    assert said in capsys.readouterr().err


def test_status_is_refused_without_env_file_or_with_a_forbidden_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Path(__file__).resolve().parents[2]
    platform = Platform(root=repo, data_dir=tmp_path / "data", env_file=tmp_path / ".env")
    assert cli.main(["status", "--dev"], platform=platform) == cli.EXIT_REFUSED
    assert "No .env file" in capsys.readouterr().err
    (tmp_path / ".env").write_text("DOMAIN=x\n")
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "oops")
    assert cli.main(["status"], platform=platform) == cli.EXIT_REFUSED
    assert "COMPOSE_PROJECT_NAME is set" in capsys.readouterr().err


LONG_COMMAND = "./stack dev deploy --accept-new-volumes"


def test_piped_output_never_wraps_a_command_or_a_table() -> None:
    """Not a terminal (a pipe, COLUMNS unset): each line is as long as it is."""
    code = f"""
import os
from stack_tui import cli
from stack_tui.ops.events import Outcome, Result
from rich.table import Table
os.environ.pop("COLUMNS", None)
cli.Printer().show(Result("dev", "deploy", Outcome.FAILED, summary="x " * 60,
                       details=["Nothing was changed. To create it anyway: {LONG_COMMAND}"]))
table = Table("check", "detail")
table.add_row("services", "y" * 150)
cli.out.print(table)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    lines = done.stdout.splitlines()
    assert any(line.endswith(f"anyway: {LONG_COMMAND}") for line in lines), done.stdout
    assert any("y" * 150 in line for line in lines), done.stdout
    assert len(lines) == 2 + 5, done.stdout  # summary, detail, the table's five lines


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["deploy", "history"], "prod"),
        (["dev", "deploy", "history"], "dev"),
        (["deploy", "history", "--dev"], "dev"),
        (["deploy", "--dev", "history"], "dev"),
    ],
)
def test_deploy_history_reads_records_of_the_right_environment(
    argv: list[str], env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = Platform(
        root=tmp_path,
        dev_project="stt-cli-dev",
        prod_project="stt-cli-prod",
        data_dir=tmp_path / "data",
    )
    assert cli.main(argv, platform=platform) == cli.EXIT_OK
    assert f"No deploy of {env} recorded yet" in capsys.readouterr().out


def test_rollback_options_parse() -> None:
    options = cli.build_parser().parse_args(
        ["rollback", "--dev", "--to", "dev_20260223_172400", "--with-data", "--yes"]
    )
    assert (options.env, options.to, options.with_data, options.yes) == (
        "dev",
        "dev_20260223_172400",
        True,
        True,
    )
    assert cli.build_parser().parse_args(["deploy", "--no-rollback"]).no_rollback
