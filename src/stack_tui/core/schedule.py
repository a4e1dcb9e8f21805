"""Scheduled backups: the systemd units and the crontab lines that run them.

One service + timer pair per environment, running `./stack backup --scheduled`
from the checkout, daily, prod and dev half an hour apart so that they never
compete for the two cores. `Persistent=true` catches up a run missed while the
host was off. The crontab lines are the same schedule for hosts without systemd.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: systemd is running on this host (what sd_booted() checks).
SYSTEMD_RUNNING = Path("/run/systemd/system")
UNIT_DIR = Path("/etc/systemd/system")
#: (hour, minute) of each environment's daily run.
TIMES = {"prod": (3, 15), "dev": (3, 45)}
#: cron's own PATH (/usr/bin:/bin) lacks /usr/local/bin, where docker often lives.
CRON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Unit:
    name: str
    text: str


def command(root: Path, env: str) -> str:
    flag = " --dev" if env == "dev" else ""
    return f"{root / 'stack'} backup --scheduled{flag}"


def units(root: Path, projects: dict[str, str]) -> list[Unit]:
    """The service and timer of each environment (`projects`: env -> Compose project)."""
    made = []
    for env in ("prod", "dev"):
        hour, minute = TIMES[env]
        base = f"stack-backup-{env}"
        made.append(
            Unit(
                f"{base}.service",
                f"""\
[Unit]
Description=stack-tui: scheduled backup of {env} ({projects[env]})
Documentation=file://{root / "README.md"}
After=docker.service

[Service]
Type=oneshot
WorkingDirectory={root}
ExecStart={command(root, env)}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
""",
            )
        )
        made.append(
            Unit(
                f"{base}.timer",
                f"""\
[Unit]
Description=stack-tui: daily backup of {env} ({projects[env]})

[Timer]
OnCalendar=*-*-* {hour:02d}:{minute:02d}:00
RandomizedDelaySec=10min
Persistent=true

[Install]
WantedBy=timers.target
""",
            )
        )
    return made


def crontab(root: Path) -> str:
    """The same schedule as crontab lines (`crontab -e`); output goes to cron's mail."""
    lines = [f"PATH={CRON_PATH}"]
    for env in ("prod", "dev"):
        hour, minute = TIMES[env]
        lines.append(f"{minute} {hour} * * * cd {root} && {command(root, env)}")
    return "\n".join(lines) + "\n"


def systemd_running() -> bool:
    return SYSTEMD_RUNNING.is_dir()


def write_units(directory: Path, made: list[Unit]) -> list[Path]:
    """Write the units (0644, as systemd expects; they hold no secret), replacing ours."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for unit in made:
        path = directory / unit.name
        temporary = path.with_name(f".{unit.name}.{os.getpid()}")
        temporary.write_text(unit.text)
        temporary.chmod(0o644)
        os.replace(temporary, path)
        written.append(path)
    return written
