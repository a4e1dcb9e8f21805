"""The `stack` command line: the spec's command lines, printing operation events with rich.

    ./stack                                   open the TUI
    ./stack deploy | ./stack dev deploy       deploy prod | dev
    ./stack deploy history [--dev]            what each deploy and rollback changed
    ./stack rollback [--dev] [--to RECORD]    back to before the last deploy (or RECORD)
    ./stack status [--dev]
    ./stack backup [--dev] | ./stack backup list
    ./stack backup restore FILE [--dev]
    ./stack check [--json]
    ./stack backup drill [--dev] [FILE | --latest]
    ./stack backup --scheduled [--dev]        for cron / systemd timers
    ./stack schedule show | install
    ./stack notify test
    ./stack offsite init|push [--dev]|check     encrypted off-host copies (restic)
    ./stack shell [--dev] SERVICE [-- CMD...]   a shell (bash, else sh) or CMD in a service
    ./stack psql [--dev] [--read-only]          psql on the environment's own database

Textual is imported only when the TUI is opened.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO, cast

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table

from stack_tui.core import backups, compose, diagnostics, schedule, staleness
from stack_tui.core.environments import Environment, Platform, label
from stack_tui.core.errors import Refused, StackError
from stack_tui.ops import driver
from stack_tui.ops.events import (
    BackupTaken,
    Cause,
    Caution,
    ConfirmationNeeded,
    Event,
    Outcome,
    OutputLine,
    Result,
    ServiceProgress,
    StepFinished,
    StepStarted,
    Waiting,
)
from stack_tui.ops.runner import classify

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_ENGINE = 4
EXIT_BUSY = 5
EXIT_STALE = 6
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_FAILED}    the operation ran and failed (a service unhealthy, a dump failed, a check failed)
  {EXIT_USAGE}    usage error (unknown command, environment or option)
  {EXIT_REFUSED}    refused before anything ran (bad input, forbidden variable, not confirmed)
  {EXIT_ENGINE}    the Docker engine is unreachable
  {EXIT_BUSY}    another operation holds the environment's lock
  {EXIT_STALE}    backups are stale: the newest good or drilled backup is older than its limit
       (status, backup --scheduled; limits STACK_{{DEV,PROD}}_MAX_{{BACKUP,DRILL}}_AGE)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or SIGTERM); the operation says what it undid
"""

ENVIRONMENTS = ("dev", "prod")
HISTORY = "deploy-history"  # `./stack deploy history`, routed by main()
COMMANDS = (
    "deploy",
    "rollback",
    "status",
    "logs",
    "audit",
    "backup",
    "check",
    "offsite",
    "notify",
    "schedule",
    "shell",
    "psql",
    "tui",
)

log = logging.getLogger(__name__)

#: Line width when the output is not a terminal: lines are never cut nor wrapped there.
PIPE_WIDTH = 10_000


class _Stream(io.TextIOBase):
    """`sys.stdout` or `sys.stderr` as found at each write. Once its reader has gone
    (`./stack dev deploy | head -3`), output goes to /dev/null and the operation goes on:
    a closed pipe must never abort a deploy halfway."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _target(self) -> TextIO:
        stream: TextIO = getattr(sys, self._name)
        return stream

    def write(self, text: str) -> int:
        try:
            return self._target().write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._target().flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._target().fileno())
        finally:
            os.close(devnull)

    def isatty(self) -> bool:
        return self._target().isatty()

    def fileno(self) -> int:
        return self._target().fileno()


class _Console(Console):
    """On a terminal, its width (text soft-wrapped: a command copied from the screen is
    one line); in a pipe or a file, lines as long as they are."""

    @property
    def size(self) -> ConsoleDimensions:
        if self.is_terminal:
            return super().size
        return ConsoleDimensions(PIPE_WIDTH, 25)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out = _Console(file=cast(TextIO, _Stream("stdout")), highlight=False, soft_wrap=True)
err = _Console(file=cast(TextIO, _Stream("stderr")), highlight=False, soft_wrap=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stack",
        description="Operate the platform's dev and prod environments "
        "(Compose projects ai-agent-platform-dev and ai-agent-platform-prod). "
        "With no command, opens the TUI. The environment is prod unless you say dev: "
        "'./stack dev deploy' or '--dev'. Each environment's Docker engine: "
        "STACK_DEV_ENGINE / STACK_PROD_ENGINE (.env or environment), a Docker context name, "
        "ssh://user@host or tcp://host:2376 (TLS files in STACK_{DEV,PROD}_ENGINE_CERTS); "
        "unset: the local engine.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--read-only", action="store_true", help="open the TUI with every mutating action removed"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def env_flags(sub: argparse.ArgumentParser, dest: str = "env") -> None:
        group = sub.add_mutually_exclusive_group()
        group.add_argument(
            "--dev",
            dest=dest,
            action="store_const",
            const="dev",
            help="act on dev (ai-agent-platform-dev)",
        )
        group.add_argument(
            "--prod",
            dest=dest,
            action="store_const",
            const="prod",
            help="act on prod (the default)",
        )

    def yes_flags(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "-y", "--yes", action="store_true", help="answer yes to confirmations (for scripts)"
        )
        sub.add_argument(
            "--confirm",
            metavar="ENV",
            default="",
            help="type the environment's name non-interactively "
            "(prod confirmations need --yes --confirm prod)",
        )

    deploy = commands.add_parser(
        "deploy",
        help="back up, then deploy an environment",
        description="Deploy: check the expected volumes exist, back up the running database, "
        "'docker compose up -d --wait', attach the prod Traefik to the dev network. Prod "
        "deploys are health-gated: services that are not healthy in time send the services "
        "the deploy changed back to their previous images. Every deploy is recorded: "
        "'./stack deploy history [--dev]' lists them, './stack rollback' undoes one.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(deploy)
    yes_flags(deploy)
    deploy.add_argument(
        "--accept-new-volumes",
        action="store_true",
        help="go on when an expected volume is missing (a new EMPTY volume "
        "will be created); without it a non-interactive deploy refuses",
    )
    deploy.add_argument(
        "--wait-timeout",
        type=positive_int,
        default=180,
        metavar="SECONDS",
        help="how long to wait for every service to be healthy (default 180)",
    )
    deploy.add_argument(
        "--no-rollback",
        action="store_true",
        help="prod: keep a failed deploy's state for debugging instead of "
        "rolling the changed services back (dev never rolls back by itself)",
    )
    # `./stack deploy history`: its own parser (a subparser of deploy would take any stray
    # word after `deploy` for an unknown subcommand); main() routes the two words here.
    deploy_history = commands.add_parser(
        HISTORY,
        prog="stack deploy history",
        description="Deploys and rollbacks of an environment, newest first: what changed per "
        "service (image, config), the result, who, and the backup taken before. Records are "
        "in data/deploys/.",
    )
    env_flags(deploy_history)
    deploy_history.add_argument(
        "-n",
        "--limit",
        type=positive_int,
        default=20,
        metavar="N",
        help="show the newest N records (default 20)",
    )

    rollback = commands.add_parser(
        "rollback",
        help="bring every service back to how it was before a deploy",
        description="Go back to the images (pinned by ID: nothing is pulled) and compose files "
        "that ran before a recorded deploy: by default the newest deploy not undone yet "
        "(run it again to step further back). Checks the record and every image it needs "
        "before changing anything. Writes its own record.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(rollback)
    yes_flags(rollback)
    rollback.add_argument(
        "--to",
        metavar="RECORD",
        default="",
        help="undo this record (and what came after it), e.g. "
        "prod_20260223_172400 (see './stack deploy history')",
    )
    rollback.add_argument(
        "--with-data",
        action="store_true",
        help="also restore the database from the backup taken before that "
        "deploy (the database as it is now is backed up first)",
    )
    rollback.add_argument(
        "--wait-timeout",
        type=positive_int,
        default=180,
        metavar="SECONDS",
        help="how long to wait for every service to be healthy (default 180)",
    )

    status = commands.add_parser(
        "status",
        help="services, volumes, backups and lock holder",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(status)

    logs_parser = commands.add_parser(
        "logs",
        help="a service's log: since a time, lines matching a pattern, followed",
        description="Print one service's log (its container in the environment's own project), "
        "secrets masked. Reads the engine's log stream in chunks: any size of log, constant "
        "memory. In the TUI: l on a service (search, filters), L for all services interleaved.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(logs_parser)
    logs_parser.add_argument("service", metavar="SERVICE", help="e.g. postgres, agent")
    logs_parser.add_argument(
        "--since",
        metavar="WHEN",
        default="",
        help="only lines since then: 10m, 1h, 2d, today, or a local time (2026-12-01T10:00)",
    )
    logs_parser.add_argument(
        "--grep",
        metavar="REGEX",
        default="",
        help="only lines matching this regular expression (case-insensitive unless it has "
        "a capital letter)",
    )
    logs_parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C"
    )
    logs_parser.add_argument(
        "-t", "--timestamps", action="store_true", help="each line with its local time"
    )

    audit_parser = commands.add_parser(
        "audit",
        help="who did what to an environment, from every operator machine",
        description="An environment's audit trail, newest last: this machine's data/audit.log "
        "and, for an environment on another host's engine, the copy kept on that host (in "
        "the volume stack-tui-audit-{project}), which holds every operator machine's "
        "operations. Lines this machine has not copied there yet are copied first.",
    )
    env_flags(audit_parser)
    audit_parser.add_argument(
        "-n",
        "--limit",
        type=positive_int,
        default=30,
        metavar="N",
        help="show the newest N lines (default 30)",
    )

    backup = commands.add_parser(
        "backup",
        help="back up an environment's database; list; restore",
        description="'./stack backup [--dev]' dumps the database into "
        "data/backups/{env}_{YYYYMMDD_HHMMSS}.sql.gz. "
        "Subcommands: 'list', 'drill [FILE]', 'restore FILE', 'undo-restore', 'repair'.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(backup, dest="backup_env")  # merged with restore's own (parent_flag_error)
    backup.add_argument(
        "--keep",
        type=int,
        default=None,
        metavar="N",
        help="verified backups to keep per environment "
        f"(default $STACK_BACKUP_KEEP or {backups.DEFAULT_KEEP})",
    )
    backup.add_argument(
        "--scheduled",
        action="store_true",
        help="for cron and systemd timers: quiet on success, audited with "
        "reason 'scheduled', waits up to $STACK_SCHEDULE_LOCK_WAIT (default "
        f"{DEFAULT_LOCK_WAIT}) for a busy environment and then skips (exit 0), "
        "drills the new backup when $STACK_{DEV,PROD}_DRILL_AFTER_BACKUP is on "
        "(default: prod on, dev off), then checks staleness (exit 6)",
    )
    backup_commands = backup.add_subparsers(dest="backup_command", metavar="SUBCOMMAND")
    listing = backup_commands.add_parser("list", help="both environments' backups, newest first")
    listing.add_argument(
        "--verify",
        action="store_true",
        help="check each file's gzip integrity and dump trailer (reads them all)",
    )
    listing.add_argument(
        "--offsite",
        action="store_true",
        help="also list the off-host copies (asks the restic repository)",
    )
    drill = backup_commands.add_parser(
        "drill",
        help="restore a backup into a throwaway PostgreSQL and check it",
        description="Loads the backup into a throwaway PostgreSQL (the environment's own "
        "postgres image, no network, removed afterwards), checks every table's row count "
        "against the dump's COPY blocks and that the dump's schema objects exist, and "
        "stores the outcome beside the backup (FILE.drill.json). Never touches the "
        "environment's database or lock. A backup that fails its drill is marked: "
        "retention never counts it as a good one.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drill_target = drill.add_mutually_exclusive_group()
    drill_target.add_argument(
        "file",
        type=Path,
        nargs="?",
        help="a backup file (default: the environment's newest backup); a backup only "
        "off-host is first fetched into data/backups/ (restic dump, verified)",
    )
    drill_target.add_argument(
        "--latest", action="store_true", help="the environment's newest backup (the default)"
    )
    env_flags(drill)
    restore = backup_commands.add_parser(
        "restore",
        help="restore a backup into an environment's database",
        description="Validates the file, loads it into a new database while the application "
        "keeps serving, then switches over: the services that use the database stop, the "
        "sessions still on it are shown and (once you agree) ended, and the two databases "
        "swap names in one transaction. The database becomes exactly the backup; its state "
        "just before, with every committed write, is kept as {db}__before_{stamp} "
        "('backup undo-restore' swaps it back). A failed load changes nothing.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument(
        "file",
        type=Path,
        help="a backup file, e.g. "
        "data/backups/prod_20260223_172400.sql.gz; a backup only off-host "
        "is first fetched into data/backups/",
    )
    env_flags(restore)
    yes_flags(restore)
    restore.add_argument(
        "--allow-cross-env", action="store_true", help="allow restoring a prod backup into dev"
    )
    restore.add_argument(
        "--allow-dev-into-prod",
        action="store_true",
        help="allow restoring a dev backup into prod (also needs the name "
        "typed: interactively, or --yes --confirm prod)",
    )
    restore.add_argument(
        "--allow-outside", action="store_true", help="allow a file outside data/backups/"
    )
    undo = backup_commands.add_parser(
        "undo-restore",
        help="swap back the database kept by the last restore",
        description="The newest {db}__before_{stamp} copy becomes the environment's database "
        "again, through the same short switch-over; the current one is kept in its place, so "
        "running it twice goes back again.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(undo)
    yes_flags(undo)
    repair = backup_commands.add_parser(
        "repair",
        help="clean up what an interrupted restore left",
        description="Drops a leftover {db}__restoring, lets the database accept connections "
        "again and starts the services an interrupted switch-over stopped. Every backup, "
        "restore and deploy does this first; status and check say when it is needed.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(repair)

    check = commands.add_parser(
        "check",
        help="parity, drift and hygiene checks",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--json", action="store_true", help="machine-readable output for CI")

    notify_parser = commands.add_parser(
        "notify",
        help="notifications: 'notify test' sends a test message",
        description="Sends to every URL in $STACK_NOTIFY_URLS (.env; apprise URLs such as "
        "ntfy://, mailto://, slack://, json://). Messages go out on failed, interrupted or "
        "died operations, failed drills, stale backups and scheduled runs that gave up "
        "waiting for a lock.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    notify_parser.add_argument("notify_command", choices=["test"], metavar="test")

    schedule_parser = commands.add_parser(
        "schedule",
        help="scheduled backups: 'schedule show' prints the systemd units and "
        "crontab lines, 'schedule install' writes the units",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    schedule_parser.add_argument(
        "schedule_command", choices=["show", "install"], metavar="show|install"
    )
    schedule_parser.add_argument(
        "--unit-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where to write the units (default {schedule.UNIT_DIR}; "
        "systemctl is run only for the default)",
    )
    offsite_parser = commands.add_parser(
        "offsite",
        help="encrypted off-host copies of the backups (restic)",
        description="Every verified backup is also copied, encrypted, to a restic repository "
        "(STACK_OFFSITE_REPOSITORY and STACK_OFFSITE_PASSWORD_FILE in .env) after the "
        "operation that took it. 'init' creates the repository, 'push' uploads the local "
        "backups it lacks and applies retention (STACK_OFFSITE_KEEP), 'check' runs "
        "'restic check'. A backup only off-host is restored or drilled by its name "
        "('backup restore NAME', 'backup drill NAME'): it is fetched into data/backups/ first.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    offsite_commands = offsite_parser.add_subparsers(
        dest="offsite_command", metavar="SUBCOMMAND", required=True
    )
    offsite_commands.add_parser(
        "init",
        help="create the repository (compressed, format 2) "
        "or check an existing one opens with the password",
    )
    push = offsite_commands.add_parser(
        "push", help="upload the local backups the repository lacks, then keep the newest N copies"
    )
    env_flags(push)
    offsite_check = offsite_commands.add_parser("check", help="restic check of the repository")
    offsite_check.add_argument(
        "--read-data-subset",
        default="",
        metavar="SUBSET",
        help="also read back this part of the data (e.g. 10%% or 1/5)",
    )

    shell = commands.add_parser(
        "shell",
        help="an interactive shell (bash, else sh) in a service's container, or a command",
        description="Runs 'docker compose -p PROJECT -f ... exec SERVICE bash' (sh when the "
        "image has no bash) for the environment, so the project can never be the wrong one. "
        "Prod prints a PROD banner first. With CMD, runs that instead and exits with its status.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(shell)
    shell.add_argument("service", metavar="SERVICE", help="agent, openwebui, postgres, qdrant...")
    shell.add_argument(
        "shell_command", nargs=argparse.REMAINDER, metavar="-- CMD", help="a command to run instead"
    )
    psql_parser = commands.add_parser(
        "psql",
        help="psql on the environment's own database (agent_db_dev / agent_db) as its user",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(psql_parser)
    psql_parser.add_argument(
        "--read-only",
        dest="psql_read_only",
        action="store_true",
        help="every transaction READ ONLY (default_transaction_read_only=on): writes are refused",
    )

    tui = commands.add_parser("tui", help="open the TUI (the default with no command)")
    tui.add_argument(
        "--read-only",
        action="store_true",
        dest="tui_read_only",
        help="every mutating action removed",
    )
    return parser


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of seconds")
    return int(text)


def split_environment(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """`./stack dev deploy` -> ("dev", ["deploy"]): the spec's leading environment word."""
    args = list(argv)
    if args and args[0] in ENVIRONMENTS:
        return args[0], args[1:]
    return None, args


def main(argv: Sequence[str] | None = None, platform: Platform | None = None) -> int:
    """The console script. Tests pass their own `platform` (own project names and data)."""
    leading_env, args = split_environment(sys.argv[1:] if argv is None else argv)
    words = [a for a in args if not a.startswith("-")]
    if words[:2] == ["deploy", "history"]:
        args.remove("history")
        args[args.index("deploy")] = HISTORY
    first = next((a for a in args if not a.startswith("-")), None)
    if first is not None and first not in (*COMMANDS, HISTORY):
        err.print(f"[bold red]Unknown command or environment {escape(repr(first))}.[/]")
        err.print(
            f"Environments: {', '.join(ENVIRONMENTS)} (prod is the default). "
            f"Commands: {', '.join(COMMANDS)}. See './stack --help'."
        )
        return EXIT_USAGE
    parser = build_parser()
    try:
        options = parser.parse_args(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    problem = parent_flag_error(options, leading_env)
    if problem:
        err.print(f"[bold red]{escape(problem)}[/]")
        return EXIT_USAGE
    env_name = leading_env or getattr(options, "env", None) or "prod"
    platform = platform or Platform()
    log_file = diagnostics.log_to(platform.logs_dir)
    with _sigterm_interrupts():
        try:
            return dispatch(options, env_name, platform)
        except KeyboardInterrupt:
            err.print(
                "\n[bold yellow]Interrupted.[/] Run './stack status' to see what state "
                "the environment is in."
            )
            return EXIT_INTERRUPTED
        except StackError as error:
            return report_error(error)
        except Exception as error:  # a bug: its traceback goes to the log file, not the terminal
            log.exception("unexpected error running %s", args)
            err.print(
                f"[bold red]Unexpected error:[/] {escape(type(error).__name__)}: "
                f"{escape(str(error))}"
            )
            err.print(f"This is a bug in stack-tui; the details are in {escape(str(log_file))}.")
            return EXIT_FAILED


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (systemd stopping a unit, `kill`) stops an operation as Ctrl-C does: its
    cleanup runs and it says what it undid."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parent_flag_error(options: argparse.Namespace, leading_env: str | None) -> str:
    """A flag given to a parent command holds for its subcommand, or is refused: never
    silently dropped (`./stack backup --dev restore FILE` restores into dev). Folds the
    parent's environment into `options.env`; returns the usage error, or ""."""
    command = options.command
    sub = getattr(options, "backup_command", None)
    if options.read_only and command not in (None, "tui"):
        return f"--read-only applies to the TUI only, not to '{command}'."
    parent_env = getattr(options, "backup_env", None)
    if sub is not None and getattr(options, "keep", None) is not None:
        return f"--keep applies to taking a backup, not to 'backup {sub}'."
    given = [e for e in (leading_env, parent_env, getattr(options, "env", None)) if e]
    if len(set(given)) > 1:
        return "Conflicting environments: " + " and ".join(sorted(set(given))) + "."
    takes_env = (
        command in ("deploy", HISTORY, "rollback", "status", "logs", "audit", "shell", "psql")
        or (command == "backup" and sub != "list")
        or (command == "offsite" and getattr(options, "offsite_command", None) == "push")
    )
    if given and not takes_env:
        what = f"backup {sub}" if command == "backup" else command or "the TUI"
        return f"'{what}' covers both environments: leave out '{given[0]}'."
    if given:
        options.env = given[0]
    return ""


def dispatch(options: argparse.Namespace, env_name: str, platform: Platform) -> int:
    command = options.command
    if command in (None, "tui"):
        from stack_tui.tui import run

        return run(
            read_only=options.read_only or getattr(options, "tui_read_only", False),
            platform=platform,
        )
    if command == "check":
        return show_check(platform, as_json=options.json)
    if command == "notify":
        return notify_test(platform)
    if command == "schedule":
        return schedule_command(options, platform)
    env = platform.env(env_name)
    if command == "status":
        return show_status(platform, env)
    if command == HISTORY:
        return show_history(platform, env, options.limit)
    if command == "audit":
        return show_audit(platform, env, options.limit)
    if command == "logs":
        return show_logs(env, options)
    if command == "deploy":
        from stack_tui.ops.deploy import deploy

        events = deploy(
            platform,
            env,
            accept_new_volumes=options.accept_new_volumes,
            wait_timeout=options.wait_timeout,
            roll_back=False if options.no_rollback else None,
        )
        return drive(events, options)
    if command == "rollback":
        from stack_tui.ops.rollback import rollback

        return drive(
            rollback(
                platform,
                env,
                to=options.to,
                with_data=options.with_data,
                wait_timeout=options.wait_timeout,
            ),
            options,
        )
    if command == "backup":
        return backup_command(options, platform, env)
    if command in ("shell", "psql"):
        return console_command(options, platform, env)
    if command == "offsite":
        return offsite_command(options, platform, env)
    raise AssertionError(command)


def show_logs(env: Environment, options: argparse.Namespace) -> int:
    """`./stack logs`: the engine's stream filtered line by line as it comes (core/logs.py)."""
    from stack_tui.core import logs

    keep = logs.LogFilter(
        pattern=logs.compile_pattern(options.grep),
        since=logs.stamp_of(logs.parse_since(options.since)) if options.since else "",
    )
    (source,) = logs.sources_for(env, [options.service])
    follow = options.follow
    if source.state != "running":
        more = " Nothing more will come: not following." if follow else ""
        err.print(
            f"[yellow]{escape(options.service)} is {escape(source.state)} in {env.project}: "
            f"this is its log up to then.{more}[/]"
        )
        follow = False
    engine_since = {"since": logs.engine_time(keep.since)} if keep.since else {}
    stream = source.read(follow=follow, **engine_since)
    try:
        for batch in stream.batches():
            shown = [line.shown(options.timestamps) for line in batch if keep.keeps(line)]
            if shown:
                out.file.write("\n".join(shown) + "\n")
                out.file.flush()
    except KeyboardInterrupt:  # the way out of --follow: not an interruption of anything
        pass
    finally:
        stream.close()
    return EXIT_OK


def console_command(options: argparse.Namespace, platform: Platform, env: Environment) -> int:
    """`shell` / `psql`: the container checked, the banner printed, the terminal handed over;
    the exit status is the session's."""
    from stack_tui.core import console, engine

    client = engine.for_env(env)
    if options.command == "psql":
        session = console.psql(client, env, read_only=options.psql_read_only)
    else:
        command = list(options.shell_command)  # argparse has taken the "--" away
        if command[:1] in (["--dev"], ["--prod"]):  # `shell agent --dev`: never run "--dev"
            raise Refused(
                f"{command[0]} after SERVICE would be run as a command in the container.",
                f"Put it first: ./stack shell {command[0]} {options.service}",
            )
        session = console.shell(client, env, options.service, command)
    return console.run(platform, session, sys.stderr)


def offsite_command(options: argparse.Namespace, platform: Platform, env: Environment) -> int:
    from stack_tui.ops import offsite

    if options.offsite_command == "init":
        return drive(offsite.init(platform), options)
    if options.offsite_command == "push":
        return drive(offsite.push(platform, env), options)
    return drive(offsite.check(platform, options.read_data_subset), options)


def backup_command(options: argparse.Namespace, platform: Platform, env: Environment) -> int:
    if options.backup_command == "list":
        return show_backups(platform, verify=options.verify, offsite=options.offsite)
    if options.backup_command == "drill":
        from stack_tui.ops.drill import drill

        if options.file is not None and _only_offsite(platform, options.file):
            from stack_tui.ops.offsite import drill_copy

            return drive(drill_copy(platform, env, options.file.name), options)
        return drive(drill(platform, env, options.file), options)
    if options.backup_command == "restore":
        from stack_tui.ops.offsite import restore_copy
        from stack_tui.ops.restore import restore

        source = backups.parse_name(options.file.name)
        if source is None or source[0] == env.name:
            cross_allowed = False
        elif env.name == "dev":
            cross_allowed = options.allow_cross_env
        else:
            cross_allowed = options.allow_dev_into_prod
        if _only_offsite(platform, options.file):
            return drive(
                restore_copy(platform, env, options.file.name, allow_cross_env=cross_allowed),
                options,
            )
        return drive(
            restore(
                platform,
                env,
                options.file,
                allow_cross_env=cross_allowed,
                allow_outside=options.allow_outside,
            ),
            options,
        )
    if options.backup_command == "undo-restore":
        from stack_tui.ops.restore import undo_restore

        return drive(undo_restore(platform, env), options)
    if options.backup_command == "repair":
        from stack_tui.ops.restore import repair

        return drive(repair(platform, env), options)
    from stack_tui.ops.backup import backup

    keep = options.keep if options.keep is not None else backups.keep_setting()
    if options.scheduled:
        return scheduled_backup(platform, env, keep)
    return drive(backup(platform, env, keep=keep), options)


DEFAULT_LOCK_WAIT = "15m"


def scheduled_backup(platform: Platform, env: Environment, keep: int) -> int:
    """Quiet unless something needs a person: the output of cron and systemd is read
    (and mailed) only when there is some."""
    from stack_tui.ops import alerts
    from stack_tui.ops.backup import backup
    from stack_tui.ops.drill import drill
    from stack_tui.ops.status import stale_backups

    values = alerts.values(platform)
    wait_text = staleness.setting(values, "STACK_SCHEDULE_LOCK_WAIT") or DEFAULT_LOCK_WAIT
    wait = staleness.parse_duration("STACK_SCHEDULE_LOCK_WAIT", wait_text) or 0.0
    events = list(backup(platform, env, keep=keep, reason="scheduled", lock_wait=wait))
    result = events[-1] if events and isinstance(events[-1], Result) else None
    if result is not None and result.outcome is Outcome.SKIPPED:
        out.print(
            f"Skipped the scheduled {env.name} backup: {escape(result.summary)} "
            "The next scheduled run tries again."
        )
        return EXIT_OK
    if result is None or not result.ok:
        return replay(events)
    key = f"STACK_{env.name.upper()}_DRILL_AFTER_BACKUP"
    default = "on" if env.is_prod else "off"
    if (staleness.setting(values, key) or default).lower() in ("on", "yes", "true", "1"):
        assert isinstance(result.payload, BackupTaken)
        drilled = list(drill(platform, env, Path(result.payload.path)))
        last = drilled[-1] if drilled else None
        if not isinstance(last, Result) or not last.ok:
            return replay(drilled)
    stale = stale_backups(env, values, tuple(backups.list_backups(platform.backups_dir, env.name)))
    alerts.staleness_seen(platform, env, stale)
    for alarm in stale:
        out.print(f"[bold red]STALE:[/] {escape(alarm.message())}")
    return EXIT_STALE if stale else EXIT_OK


def _only_offsite(platform: Platform, file: Path) -> bool:
    """A backup's name that is not in data/backups/ (given bare or with that directory),
    with off-host copies configured: the restore fetches it from the repository first."""
    from stack_tui.core import offsite

    if os.path.lexists(file) or backups.parse_name(file.name) is None:
        return False
    if not offsite.settings(platform.dotenv).get(offsite.REPOSITORY_VAR):
        return False  # off: the restore says there is no such file
    in_backups = file.parent == Path() or file.parent.resolve() == platform.backups_dir.resolve()
    return in_backups and not os.path.lexists(platform.backups_dir / file.name)


def replay(events: list[Event]) -> int:
    """Print a run that was kept quiet, because it did not go well; its exit code."""
    printer = Printer()
    for event in events:
        printer.show(event)
    last = events[-1] if events else None
    return exit_code(last.outcome, last.cause) if isinstance(last, Result) else EXIT_FAILED


def notify_test(platform: Platform) -> int:
    from stack_tui.core import notify
    from stack_tui.ops import alerts

    values = alerts.values(platform)
    delivery = notify.send(
        platform.data,
        values,
        env="-",
        title="stack: test message",
        reason="Operation: notify test\nReason: a person asked for a test "
        "message; nothing is wrong.",
        look="./stack status",
        failure=False,
    )
    if delivery is None:
        err.print(f"[bold red]No notification URL configured[/] ({notify.URLS_KEY} is empty).")
        err.print(
            f"Add one to .env, e.g. {notify.URLS_KEY}=ntfy://my-topic "
            "(any apprise URL), then run this again."
        )
        return EXIT_REFUSED
    if not delivery.ok:
        err.print(f"[bold red]The test message could not be sent:[/] {escape(delivery.reason)}")
        err.print(
            "The failure is in data/audit.log and ./stack status shows it until a "
            "message goes through."
        )
        return EXIT_FAILED
    urls = "URL" if delivery.sent_to == 1 else "URLs"
    out.print(f"Test message sent to {delivery.sent_to} {urls}.")
    return EXIT_OK


def schedule_command(options: argparse.Namespace, platform: Platform) -> int:
    projects = {"dev": platform.dev_project, "prod": platform.prod_project}
    units = schedule.units(platform.root, projects)
    if options.schedule_command == "show":
        for unit in units:
            out.print(f"# {options.unit_dir or schedule.UNIT_DIR}/{unit.name}", markup=False)
            out.print(unit.text, markup=False)
        out.print("# or, without systemd: crontab -e, then", markup=False)
        out.print(schedule.crontab(platform.root), markup=False, end="")
        return EXIT_OK
    directory = options.unit_dir or schedule.UNIT_DIR
    if options.unit_dir is None and not schedule.systemd_running():
        err.print(
            "[bold red]systemd is not running on this host[/] "
            f"({schedule.SYSTEMD_RUNNING} is missing): no units written."
        )
        err.print(
            "Use the crontab lines from './stack schedule show' instead, or pass "
            "--unit-dir DIR to write the units somewhere else."
        )
        return EXIT_REFUSED
    try:
        written = schedule.write_units(directory, units)
    except OSError as error:
        err.print(
            f"[bold red]Could not write the units into {escape(str(directory))}:[/] "
            f"{escape(error.strerror or str(error))}."
        )
        err.print("Run it as root, or pass --unit-dir DIR.")
        return EXIT_FAILED
    for path in written:
        out.print(f"wrote {escape(str(path))}")
    if options.unit_dir is not None:
        out.print(
            "Not enabled (not the system's unit directory). To use them: copy them to "
            f"{schedule.UNIT_DIR}, then systemctl daemon-reload && systemctl enable --now "
            "stack-backup-prod.timer stack-backup-dev.timer"
        )
        return EXIT_OK
    timers = [unit.name for unit in units if unit.name.endswith(".timer")]
    for step in (["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", *timers]):
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            err.print(
                f"[bold red]{escape(' '.join(step))} failed:[/] {escape(done.stderr.strip())}"
            )
            return EXIT_FAILED
    out.print(f"Enabled {', '.join(timers)} (systemctl list-timers 'stack-backup-*').")
    return EXIT_OK


def drive(events: Iterator[Event], options: argparse.Namespace) -> int:
    """Print each event; answer confirmations; the exit code comes from the Result.

    Ctrl-C (and SIGTERM, see `main`) is thrown into the operation (ops.driver), which undoes
    what it started, says what it undid, and ends with its Result: the message is its own."""
    printer = Printer()
    warned: set[str] = set()

    def show(event: Event) -> None:
        if isinstance(event, Caution):
            warned.add(event.message)
        printer.show(event)

    def ask(question: ConfirmationNeeded) -> bool:
        printer.settle()
        return confirm(question, options, warned)

    operation = getattr(options, "backup_command", None) or options.command
    result = driver.drive(events, answer=ask, on_event=show, operation=operation)
    return exit_code(result.outcome, result.cause)


#: How an operation ended -> the documented exit code (CLI results and errors alike) ...
EXIT_FOR_OUTCOME = {
    Outcome.OK: EXIT_OK,
    Outcome.FAILED: EXIT_FAILED,
    Outcome.REFUSED: EXIT_REFUSED,
    Outcome.CANCELLED: EXIT_REFUSED,
    Outcome.INTERRUPTED: EXIT_INTERRUPTED,
    Outcome.DIED: EXIT_FAILED,
    Outcome.SKIPPED: EXIT_OK,  # a scheduled run that found the lock busy: the next one retries
}
#: ... unless its cause has a code of its own.
EXIT_FOR_CAUSE = {Cause.ENGINE_UNREACHABLE: EXIT_ENGINE, Cause.BUSY: EXIT_BUSY}


def exit_code(outcome: Outcome, cause: Cause | None) -> int:
    return EXIT_FOR_CAUSE[cause] if cause is not None else EXIT_FOR_OUTCOME[outcome]


class Printer:
    """Prints events as lines. A wait is one line that is rewritten each second on a
    terminal, and printed again only when the blockers change when output is a file."""

    def __init__(self) -> None:
        self.services: dict[str, str] = {}
        self.waiting = ""  # the blockers last printed
        self.open_line = False  # a rewritten line is on screen without its newline

    def settle(self) -> None:
        if self.open_line:
            out.print()
            self.open_line = False

    def show(self, event: Event) -> None:
        if isinstance(event, Waiting):
            self.show_wait(event)
            return
        self.settle()
        self.waiting = ""
        if isinstance(event, StepStarted):
            detail = f": {escape(event.detail)}" if event.detail else ""
            out.print(f"[bold]→ {escape(event.step)}[/]{detail}")
        elif isinstance(event, StepFinished):
            mark = "[green]✓[/]" if event.ok else "[red]✗[/]"
            detail = f" {escape(event.detail)}" if event.detail else ""
            out.print(f"  {mark} {escape(event.step)}{detail}")
        elif isinstance(event, ServiceProgress):
            if self.services.get(event.service) != event.state:
                self.services[event.service] = event.state
                out.print(f"    {escape(event.service):<12} {escape(event.state)}")
        elif isinstance(event, OutputLine):
            out.print(f"    [dim]{escape(event.line)}[/]")
        elif isinstance(event, Caution):
            out.print(f"[bold red]{escape(event.message)}[/]")
        elif isinstance(event, Result):
            colour = "green" if event.ok else "red"
            out.print(f"[bold {colour}]{escape(event.summary)}[/]")
            for line in event.details:
                out.print(f"  {escape(line)}")

    def show_wait(self, event: Waiting) -> None:
        blockers = "; ".join(event.blockers)
        line = (
            f"  waiting {event.seconds:.0f} s (gives up at {event.bound:.0f} s) for "
            f"{event.what}, blocked by {blockers}"
        )
        if out.is_terminal:  # one line, rewritten in place each second
            width = max(20, out.width - 1)
            out.file.write("\r\x1b[2K" + line[:width])
            out.file.flush()
            self.open_line = True
        elif blockers != self.waiting:
            out.print(f"[bold yellow]{escape(line)}[/]")
        self.waiting = blockers


def confirm(
    event: ConfirmationNeeded, options: argparse.Namespace, already_shown: set[str]
) -> bool:
    """Ask on the terminal; --yes answers (prod also needs --confirm prod); no terminal: no."""
    out.print(f"[bold yellow]{escape(event.question)}[/]")
    for line in event.details:
        if line not in already_shown:
            out.print(f"  {escape(line)}")
    needs_name = event.require_typing
    if options.yes:
        if needs_name == "prod" and options.confirm != "prod":
            err.print(
                "[bold red]Not confirmed:[/] prod needs its name typed. "
                "Run interactively, or add --confirm prod."
            )
            return False
        return True
    if not sys.stdin.isatty():
        err.print(
            "[bold red]Not confirmed:[/] no terminal to ask on. Re-run in a terminal, "
            "or pass --yes (prod also needs --confirm prod)."
        )
        return False
    if needs_name:
        answer = out.input(f"Type [bold]{escape(needs_name)}[/] to go on (anything else cancels): ")
        return answer.strip() == needs_name
    answer = out.input("Go on? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def report_error(error: StackError) -> int:
    err.print(f"[bold red]Error:[/] {escape(error.message)}")
    if error.hint:
        err.print(escape(error.hint))
    return exit_code(*classify(error))


def show_status(platform: Platform, env: Environment) -> int:
    from stack_tui.core import notify
    from stack_tui.ops import alerts
    from stack_tui.ops.status import database_state, status

    prepared = compose.ready(env)  # no .env, a forbidden variable: refused (exit 3)
    snapshot = status(platform, env, prepared=prepared)
    out.print(f"[bold]{label(env)}[/]  project {snapshot.project}  domain {snapshot.domain or '-'}")
    if snapshot.error:
        out.print(f"[bold red]{escape(snapshot.error)}[/]")
        if snapshot.hint:
            out.print(escape(snapshot.hint))
        return EXIT_ENGINE if snapshot.engine_unreachable else EXIT_FAILED
    table = Table("service", "state", "health", "uptime", "image")
    for row in snapshot.services:
        style = "" if row.ok else "bold red"
        table.add_row(
            row.service, row.state, row.health or "-", row.uptime() or "-", row.image, style=style
        )
    out.print(table)
    for volume in snapshot.volumes:
        state = "present" if volume.present else "[bold red]MISSING[/]"
        out.print(f"volume {volume.name}: {state}")
    if snapshot.died:
        out.print(f"[bold red]last operation:[/] {escape(snapshot.died.describe())}")
    if snapshot.holder:
        out.print(f"[bold yellow]busy:[/] {escape(snapshot.holder.describe())}")
    newest = snapshot.backups[0].name if snapshot.backups else "none"
    out.print(f"backups: {len(snapshot.backups)} (newest: {newest})")
    drilled = next((b for b in snapshot.backups if b.drill is not None), None)
    if drilled is not None:
        out.print(f"last drill: {drilled.name} {drill_text(drilled)}")
    for alarm in snapshot.stale:
        out.print(f"[bold red]STALE:[/] {escape(alarm.message())}")
    failure = notify.last_failure(platform.data)
    if failure is not None:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(failure.get("at", 0))))
        out.print(
            f"[bold red]notifications: the last message could not be sent[/] ({when}: "
            f"{escape(str(failure.get('reason', '')))}); see data/audit.log, "
            "./stack notify test"
        )
    from stack_tui.ops.offsite import status_line

    fine, offsite_text = status_line(platform, env)
    out.print(
        f"off-host: {escape(offsite_text)}"
        if fine
        else f"[bold red]off-host: {escape(offsite_text)}[/]"
    )
    database = database_state(platform, env)
    if database is not None:
        undo = "./stack backup undo-restore" + (" --dev" if env.name == "dev" else "")
        for copy in database.copies:
            out.print(
                f"kept by a restore: {copy.name} ({backups.human_size(copy.size)}); "
                f"{undo} swaps it back",
                soft_wrap=True,
            )
        repair = "./stack backup repair" + (" --dev" if env.name == "dev" else "")
        for problem in database.problems:
            out.print(
                f"[bold red]interrupted restore:[/] {escape(problem)}; fix: {repair}",
                soft_wrap=True,
            )
    alerts.staleness_seen(platform, env, snapshot.stale)
    healthy = all(row.ok for row in snapshot.services) and not snapshot.missing_volumes
    if not healthy or (database is not None and database.problems):
        return EXIT_FAILED
    return EXIT_STALE if snapshot.stale else EXIT_OK


def show_history(platform: Platform, env: Environment, limit: int) -> int:
    from stack_tui.core import records

    found = records.history(platform, env.name)
    if not found:
        out.print(
            f"No deploy of {env.name} recorded yet in "
            f"{display_path(records.deploys_dir(platform))}."
        )
        return EXIT_OK
    for record in found[:limit]:
        colour = {"ok": "green", "running": "yellow"}.get(record.result, "red")
        undoes = f" (undoes {record.undoes})" if record.undoes else ""
        out.print(
            f"[bold]{escape(record.id)}[/]  {record.when}  {record.operation}{undoes}  "
            f"[{colour}]{escape(record.result)}[/]  by {escape(record.who())}"
        )
        backup = record.backup or "none"
        commit = f"  commit {record.git_commit[:12]}" if record.git_commit else ""
        out.print(f"  backup before: {escape(backup)}  compose {record.compose_hash[:12]}{commit}")
        for line in record.change_lines():
            out.print(f"  {escape(line)}")
        if record.summary and record.result not in ("ok",):
            out.print(f"  [dim]{escape(record.summary)}[/]")
    return EXIT_OK


def show_audit(platform: Platform, env: Environment, limit: int) -> int:
    """The newest `limit` lines; where each one is kept (here, on the engine's host, both)
    only when the environment is on another host's engine."""
    from stack_tui.core import engine_audit
    from stack_tui.core.prepared import prepare

    found = engine_audit.trail(prepare(env), platform.audit_log)
    if found.host:
        out.print(f"{env.name}'s audit trail, here and on its engine's host {escape(found.host)}:")
    if found.error:
        err.print(
            f"[bold red]{env.name}'s trail on {escape(found.host or 'its engine')} could not be "
            f"read or brought up to date:[/] {escape(found.error)} Only this machine's "
            "lines are shown."
        )
    if not found.entries:
        out.print(f"No operation on {env.name} recorded yet.")
    for entry, where in found.entries[-limit:]:
        colour = "green" if entry.get("result") == "ok" else "red"
        who = f"{entry.get('user', '?')}@{entry.get('host', '?')}"
        if entry.get("ssh_client"):
            who += f" from {entry['ssh_client']}"
        kept = f"  [dim]{where}[/]" if found.host else ""
        out.print(
            f"{escape(str(entry.get('time', '')))}  {escape(str(entry.get('operation', '')))}  "
            f"[{colour}]{escape(str(entry.get('result', '')))}[/]  {escape(who)} "
            f"(pid {entry.get('pid', '?')}){kept}"
        )
        if entry.get("detail"):
            out.print(f"  [dim]{escape(str(entry['detail']))}[/]")
    return EXIT_FAILED if found.error else EXIT_OK


def show_backups(platform: Platform, verify: bool, offsite: bool = False) -> int:
    """Both environments, newest first; file paths never cut (they are pasted into restore).
    With `offsite`, the off-host copies too: an `off-host` column, and rows for the copies
    that are only off-host (restoring one fetches it first)."""
    from stack_tui.ops.backup import list_all
    from stack_tui.ops.offsite import as_backup_info, copies
    from stack_tui.ops.status import human_duration

    listing = list_all(platform, verify=verify)
    rows = [(env_name, info) for env_name in ("prod", "dev") for info in listing[env_name]]
    remote: set[str] = set()
    failed: StackError | None = None
    if offsite:
        try:
            found = copies(platform)
        except StackError as error:
            failed = error
        else:
            remote = {copy.name for copy in found}
            local = {info.name for _, info in rows}
            rows += [
                (copy.env, as_backup_info(platform, copy))
                for copy in found
                if copy.name not in local
            ]
            rows.sort(key=lambda row: (row[0] != "prod", -row[1].taken.timestamp(), row[1].name))
    if not rows:
        out.print(
            f"No backups in {display_path(platform.backups_dir)} yet "
            "('./stack backup' or './stack backup --dev' takes one)."
        )
    else:
        paths = [display_path(info.path) for _, info in rows]
        columns = ["env", "size", "age", "verified", "drill"] + (["off-host"] if offsite else [])
        table = Table(*columns)
        table.add_column("file", no_wrap=True, min_width=max(map(len, paths)))
        for (env_name, info), path in zip(rows, paths, strict=True):
            local_file = info.path.exists()
            verified = "-"
            if info.verified is True:
                verified = "[green]ok[/]"
            elif info.verified is False:  # the reason comes from the cache: no second read
                verified = f"[red]{escape(backups.verify_cached(info.path).reason)}[/]"
            cells = [
                env_name,
                backups.human_size(info.size),
                human_duration(info.age()),
                verified,
                drill_text(info),
            ]
            if offsite:
                if not local_file:
                    cells.append("[cyan]only off-host[/]")
                elif failed is None:
                    cells.append("yes" if info.name in remote else "[yellow]no[/]")
                else:
                    cells.append("?")
            table.add_row(*cells, escape(path))
        out.print(table)
    if failed is not None:
        err.print(f"[bold red]Off-host copies could not be listed:[/] {escape(failed.message)}")
        if failed.hint:
            err.print(escape(failed.hint))
        outcome, cause = classify(failed)
        return exit_code(outcome, cause)
    return EXIT_OK


def drill_text(info: backups.BackupInfo) -> str:
    """ "drilled ok 2h ago, 41 s" in green, a failed drill in red, "-" if never drilled."""
    if info.drill is None:
        return "-"
    colour = "green" if info.drill.ok else "bold red"
    return f"[{colour}]{escape(info.drill.summary())}[/]"


def display_path(path: Path) -> str:
    """Relative to the working directory when under it: what an operator types next."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def show_check(platform: Platform, as_json: bool) -> int:
    from stack_tui.ops.check import run_checks

    report = run_checks(platform)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return EXIT_OK if report.ok else EXIT_FAILED
    sections: dict[str, Table] = {}
    for row in report.rows:
        table = sections.setdefault(
            row.section, Table("check", "result", "dev", "prod", "detail", title=row.section)
        )
        table.add_row(
            row.name,
            "[green]pass[/]" if row.ok else "[bold red]FAIL[/]",
            escape(row.dev),
            escape(row.prod),
            escape(row.detail),
        )
    for table in sections.values():
        out.print(table)
    return EXIT_OK if report.ok else EXIT_FAILED
