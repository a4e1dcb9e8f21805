"""What a confirmation says will happen, written from the pane's current snapshot.

Textual-free, so the wording is testable on its own. The operations ask their
own questions too (a missing volume, a restore); these are the TUI's questions
before it starts one, and they name files, databases and projects exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from stack_tui.core import backups
from stack_tui.core.environments import Environment, label
from stack_tui.ops.status import EnvStatus

if TYPE_CHECKING:
    from stack_tui.ops.events import ConfirmationNeeded


@dataclass(frozen=True)
class Plan:
    title: str
    question: str
    details: list[str] = field(default_factory=list)
    require_typing: str = ""
    confirm_label: str = "Confirm"
    #: The environment it acts on ("prod" colours the dialog like the prod pane).
    env: str = ""


def _postgres_running(status: EnvStatus | None) -> bool:
    return status is not None and any(
        row.service == "postgres" and row.state == "running" for row in status.services
    )


def deploy(env: Environment, status: EnvStatus | None) -> Plan:
    from stack_tui.ops.deploy import missing_volume_warning  # the deploy's own words

    missing = status.missing_volumes if status is not None else []
    services = ", ".join(row.service for row in status.services) if status else "its services"
    if _postgres_running(status):
        backup = (
            f"1. Pre-deploy backup of database {env.db_name} into "
            f"data/backups/{env.name}_<time>.sql.gz; if it fails, the deploy stops there."
        )
    else:
        backup = (
            f"1. No pre-deploy backup: {env.name}'s Postgres is not running, "
            "so there is nothing to back up yet."
        )
    details = [backup]
    for volume in missing:
        details += [
            missing_volume_warning(volume),
            f"   The deploy will ask you to type '{env.name}' again to accept it.",
        ]
    details += [
        f"2. docker compose -p {env.project} up -d --wait: recreate what changed among "
        f"{services}, then wait until every service is healthy.",
        "3. Attach the prod Traefik to the dev network when both exist.",
        "A service that does not get healthy fails the deploy, with its last log lines.",
    ]
    return Plan(
        title=f"Deploy {label(env)}",
        question=f"Deploy {label(env)} (project {env.project})?",
        details=details,
        require_typing=env.name if env.is_prod or missing else "",
        confirm_label="Deploy",
        env=env.name,
    )


def backup(env: Environment, status: EnvStatus | None, keep: int) -> Plan:
    existing = list(status.backups) if status is not None else []
    newest = datetime.max.replace(microsecond=0)
    new = backups.BackupInfo(
        env.backups_dir / backups.backup_name(env.name, newest), env.name, newest, 0, verified=True
    )
    pruned = backups.plan_prune([new, *existing], keep)
    details = [
        f"pg_dump of database {env.db_name} in {env.project}'s postgres container, gzipped to "
        f"data/backups/{env.name}_<time>.sql.gz (written under a temporary name, verified, "
        "then renamed).",
    ]
    if not _postgres_running(status):
        details.append(
            f"{env.name}'s Postgres is not running: the backup will fail and "
            "nothing will be pruned."
        )
    if pruned:
        details.append(
            f"Then retention keeps the newest {keep} {env.name} backups and deletes "
            f"{len(pruned)}: " + ", ".join(info.name for info in pruned) + "."
        )
    else:
        details.append(f"Retention keeps the newest {keep} {env.name} backups: none is deleted.")
    return Plan(
        title=f"Back up {label(env)}",
        question=f"Back up {label(env)}'s database {env.db_name}?",
        details=details,
        require_typing=env.name if env.is_prod else "",
        confirm_label="Back up",
        env=env.name,
    )


def operation_question(operation: str, event: ConfirmationNeeded) -> Plan:
    """An operation's own question, asked while it waits (a missing volume, a restore)."""
    return Plan(
        title=f"{label(event.env)} {operation}: confirm",
        question=event.question,
        details=list(event.details),
        require_typing=event.require_typing,
        confirm_label="Go on",
        env=event.env,
    )


def quit_while_running(operations: list[str]) -> Plan:
    return Plan(
        title="Quit while an operation runs?",
        question="Still running: " + "; ".join(operations) + ".",
        details=[
            "Quitting interrupts it at its next step, as Ctrl-C does in the CLI: the lock is "
            "released and the audit log records it as interrupted.",
            "A deploy interrupted half-way can leave services partly updated.",
        ],
        confirm_label="Quit anyway",
    )
