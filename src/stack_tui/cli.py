"""The `stack` command line: the spec's command lines, printing operation events with rich.

    ./stack                                   open the TUI
    ./stack deploy | ./stack dev deploy       deploy prod | dev
    ./stack status [--dev]
    ./stack backup [--dev] | ./stack backup list
    ./stack backup restore FILE [--dev]
    ./stack check [--json]
    ./stack offsite init|push [--dev]|check     encrypted off-host copies (restic)

Textual is imported only when the TUI is opened.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stack_tui.core import backups
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import StackError
from stack_tui.ops.events import (
    ConfirmationNeeded,
    Event,
    OutputLine,
    Result,
    ServiceProgress,
    StepFinished,
    StepStarted,
    Warning,
)
from stack_tui.ops.runner import error_kind

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_ENGINE = 4
EXIT_BUSY = 5
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_FAILED}    the operation ran and failed (a service unhealthy, a dump failed, a check failed)
  {EXIT_USAGE}    usage error (unknown command, environment or option)
  {EXIT_REFUSED}    refused before anything ran (bad input, forbidden variable, not confirmed)
  {EXIT_ENGINE}    the Docker engine is unreachable
  {EXIT_BUSY}    another operation holds the environment's lock
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); no partial backup is left and the lock is released
"""

ENVIRONMENTS = ("dev", "prod")
COMMANDS = ("deploy", "status", "backup", "check", "offsite", "tui")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stack",
        description="Operate the platform's dev and prod environments "
        "(Compose projects ai-agent-platform-dev and ai-agent-platform-prod). "
        "With no command, opens the TUI. The environment is prod unless you say dev: "
        "'./stack dev deploy' or '--dev'.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--read-only", action="store_true", help="open the TUI with every mutating action removed"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def env_flags(sub: argparse.ArgumentParser) -> None:
        group = sub.add_mutually_exclusive_group()
        group.add_argument(
            "--dev",
            dest="env",
            action="store_const",
            const="dev",
            help="act on dev (ai-agent-platform-dev)",
        )
        group.add_argument(
            "--prod",
            dest="env",
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
        "'docker compose up -d --wait', attach the prod Traefik to the dev network.",
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

    status = commands.add_parser(
        "status",
        help="services, volumes, backups and lock holder",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(status)

    backup = commands.add_parser(
        "backup",
        help="back up an environment's database; list; restore",
        description="'./stack backup [--dev]' dumps the database into "
        "data/backups/{env}_{YYYYMMDD_HHMMSS}.sql.gz. "
        "Subcommands: 'list', 'restore FILE'.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env_flags(backup)
    backup.add_argument(
        "--keep",
        type=int,
        default=None,
        metavar="N",
        help="verified backups to keep per environment "
        f"(default $STACK_BACKUP_KEEP or {backups.DEFAULT_KEEP})",
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
    restore = backup_commands.add_parser(
        "restore",
        help="restore a backup into an environment's database",
        description="Validates the file, takes a safety backup, then restores in one "
        "transaction: a failed restore leaves the database as it was.",
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

    check = commands.add_parser(
        "check",
        help="parity, drift and hygiene checks",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--json", action="store_true", help="machine-readable output for CI")

    offsite_parser = commands.add_parser(
        "offsite",
        help="encrypted off-host copies of the backups (restic)",
        description="Every verified backup is also copied, encrypted, to a restic repository "
        "(STACK_OFFSITE_REPOSITORY and STACK_OFFSITE_PASSWORD_FILE in .env) after the "
        "operation that took it. 'init' creates the repository, 'push' uploads the local "
        "backups it lacks and applies retention (STACK_OFFSITE_KEEP), 'check' runs "
        "'restic check'.",
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
    first = next((a for a in args if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS:
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
    flag_env = getattr(options, "env", None)
    if leading_env and flag_env and leading_env != flag_env:
        err.print(f"[bold red]Conflicting environments: '{leading_env}' and '--{flag_env}'.[/]")
        return EXIT_USAGE
    env_name = leading_env or flag_env or "prod"
    try:
        return dispatch(options, env_name, platform or Platform())
    except KeyboardInterrupt:
        err.print(
            "\n[bold yellow]Interrupted.[/] No partial backup was left and the lock is "
            "released. Run './stack status' to see what state the services are in."
        )
        return EXIT_INTERRUPTED
    except StackError as error:
        return report_error(error)


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
    env = platform.env(env_name)
    if command == "status":
        return show_status(platform, env)
    if command == "deploy":
        from stack_tui.ops.deploy import deploy

        events = deploy(
            platform,
            env,
            accept_new_volumes=options.accept_new_volumes,
            wait_timeout=options.wait_timeout,
        )
        return drive(events, options)
    if command == "backup":
        return backup_command(options, platform, env)
    if command == "offsite":
        return offsite_command(options, platform, env)
    raise AssertionError(command)


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
    from stack_tui.ops.backup import backup

    keep = options.keep if options.keep is not None else backups.keep_setting()
    return drive(backup(platform, env, keep=keep), options)


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


def drive(events: Iterator[Event], options: argparse.Namespace) -> int:
    """Print each event; answer confirmations; the exit code comes from the Result."""
    result: Result | None = None
    services: dict[str, str] = {}
    warned: set[str] = set()
    try:
        for event in events:
            if isinstance(event, Warning):
                warned.add(event.message)
            if isinstance(event, ConfirmationNeeded):
                event.answer(confirm(event, options, already_shown=warned))
            elif isinstance(event, Result):
                result = event
            print_event(event, services)
    finally:
        close = getattr(events, "close", None)
        if close:
            close()
    if result is None:
        return EXIT_FAILED
    if result.ok:
        return EXIT_OK
    return exit_code_for(result)


#: A failed operation's kind of error (ops.runner.error_kind) -> the documented exit code.
EXIT_FOR_ERROR = {"EngineUnreachable": EXIT_ENGINE, "LockHeld": EXIT_BUSY, "Refused": EXIT_REFUSED}


def exit_code_for(result: Result) -> int:
    """A failed Result carries the kind of error that stopped it (ops.runner)."""
    return EXIT_FOR_ERROR.get(str(result.data.get("error", "")), EXIT_FAILED)


def print_event(event: Event, services: dict[str, str]) -> None:
    if isinstance(event, StepStarted):
        detail = f": {escape(event.detail)}" if event.detail else ""
        out.print(f"[bold]→ {escape(event.step)}[/]{detail}")
    elif isinstance(event, StepFinished):
        mark = "[green]✓[/]" if event.ok else "[red]✗[/]"
        detail = f" {escape(event.detail)}" if event.detail else ""
        out.print(f"  {mark} {escape(event.step)}{detail}")
    elif isinstance(event, ServiceProgress):
        if services.get(event.service) != event.state:
            services[event.service] = event.state
            out.print(f"    {escape(event.service):<12} {escape(event.state)}")
    elif isinstance(event, OutputLine):
        out.print(f"    [dim]{escape(event.line)}[/]")
    elif isinstance(event, Warning):
        out.print(f"[bold red]{escape(event.message)}[/]")
    elif isinstance(event, Result):
        colour = "green" if event.ok else "red"
        out.print(f"[bold {colour}]{escape(event.summary)}[/]")
        for line in event.details:
            out.print(f"  {escape(line)}")


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
    return EXIT_FOR_ERROR.get(error_kind(error), EXIT_FAILED)


def show_status(platform: Platform, env: Environment) -> int:
    from stack_tui.ops.status import status

    snapshot = status(platform, env)
    label = "PROD" if env.is_prod else "dev"
    out.print(f"[bold]{label}[/]  project {snapshot.project}  domain {snapshot.domain or '-'}")
    if snapshot.error:
        out.print(f"[bold red]{escape(snapshot.error)}[/]")
        if snapshot.hint:
            out.print(escape(snapshot.hint))
        return EXIT_ENGINE if "unreachable" in snapshot.error else EXIT_FAILED
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
    if snapshot.holder:
        out.print(f"[bold yellow]busy:[/] {escape(snapshot.holder.describe())}")
    newest = snapshot.backups[0].name if snapshot.backups else "none"
    out.print(f"backups: {len(snapshot.backups)} (newest: {newest})")
    from stack_tui.ops.offsite import status_line

    fine, offsite_text = status_line(platform, env)
    out.print(
        f"off-host: {escape(offsite_text)}"
        if fine
        else f"[bold red]off-host: {escape(offsite_text)}[/]"
    )
    healthy = all(row.ok for row in snapshot.services) and not snapshot.missing_volumes
    return EXIT_OK if healthy else EXIT_FAILED


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
        columns = ["env", "size", "age", "verified"] + (["off-host"] if offsite else [])
        table = Table(*columns)
        table.add_column("file", no_wrap=True, min_width=max(map(len, paths)))
        for (env_name, info), path in zip(rows, paths, strict=True):
            local_file = info.path.exists()
            verified = "-"
            if info.verified is True:
                verified = "[green]ok[/]"
            elif info.verified is False:  # the reason comes from the cache: no second read
                verified = f"[red]{escape(backups.verify_cached(info.path).reason)}[/]"
            cells = [env_name, backups.human_size(info.size), human_duration(info.age()), verified]
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
        return EXIT_FOR_ERROR.get(error_kind(failed), EXIT_FAILED)
    return EXIT_OK


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
