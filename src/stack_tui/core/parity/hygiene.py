"""Hygiene: forbidden variables, orphaned volumes, the prod Traefik on the dev network, .env."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stack_tui.core import dotenv
from stack_tui.core.backups import human_size
from stack_tui.core.environments import Environment
from stack_tui.core.parity.report import HYGIENE, CheckRow


def forbidden_row(found: list[str]) -> CheckRow:
    return CheckRow(
        HYGIENE,
        "Forbidden variables",
        not found,
        detail="; ".join(found) or "neither COMPOSE_PROJECT_NAME nor STACK_PROJECT_NAME is set",
    )


@dataclass(frozen=True)
class Orphan:
    """Platform data under a name no deploy will use: likely where "lost" data is."""

    env: str  # whose data it looks like: dev or prod
    name: str  # volume name or directory path
    project: str  # the compose project that made it ("" when unknown)
    size: int | None  # bytes; None when the engine does not say

    def describe(self) -> str:
        size = "size unknown" if self.size is None or self.size < 0 else human_size(self.size)
        made_by = f", project {self.project}" if self.project else ""
        return f"{self.name} ({size}{made_by})"


def orphan_volumes(
    volumes: Iterable[Mapping[str, Any]], dev_env: Environment, prod_env: Environment
) -> list[Orphan]:
    """Volumes holding a platform data volume (by Compose's volume label, or by the
    `{project}_{key}` name Compose would give it) for a project that is not ours.
    `volumes` are the engine's volume records, as `docker system df` lists them."""
    ours = {dev_env.project, prod_env.project}
    keys = {dev_env.postgres_volume_key: "dev", prod_env.postgres_volume_key: "prod"}
    found = []
    for volume in volumes:
        name = str(volume.get("Name", ""))
        labels = volume.get("Labels") or {}
        project = str(labels.get("com.docker.compose.project", ""))
        key = str(labels.get("com.docker.compose.volume", ""))
        if not key:
            key = next((k for k in keys if name.endswith(f"_{k}")), "")
            project = project or name.removesuffix(f"_{key}")
        if key not in keys or project in ours:
            continue
        size = (volume.get("UsageData") or {}).get("Size")
        found.append(Orphan(keys[key], name, project, size if isinstance(size, int) else None))
    return sorted(found, key=lambda o: o.name)


def orphans_row(orphans: list[Orphan]) -> CheckRow:
    shown = {
        env: ", ".join(o.describe() for o in orphans if o.env == env) for env in ("dev", "prod")
    }
    if not orphans:
        return CheckRow(HYGIENE, "Orphaned data", True, "none", "none")
    return CheckRow(
        HYGIENE,
        "Orphaned data",
        False,
        shown["dev"] or "none",
        shown["prod"] or "none",
        "PLATFORM DATA OUTSIDE THE PLATFORM'S PROJECTS: "
        + ", ".join(o.describe() for o in orphans)
        + ". Likely made by 'docker compose up' without -p or after a directory rename; "
        "this is where 'lost' data is. Back it up before removing anything.",
    )


@dataclass(frozen=True)
class TraefikAttachment:
    """What the engine says about the prod Traefik and the dev network."""

    network: str
    network_exists: bool
    traefik: str  # container name, "" when the prod Traefik has no container
    traefik_running: bool
    attached: bool


def traefik_attachment_row(seen: TraefikAttachment) -> CheckRow:
    """Dev is only reachable when the prod Traefik is on the dev network."""
    dev = f"{seen.network} {'exists' if seen.network_exists else 'does not exist'}"
    prod = (
        f"{seen.traefik} {'running' if seen.traefik_running else 'not running'}"
        if seen.traefik
        else "no Traefik container"
    )
    name = "Traefik on dev network"
    if not (seen.network_exists and seen.traefik_running):
        return CheckRow(
            HYGIENE,
            name,
            True,
            dev,
            prod,
            "attached" if seen.attached else "not both running: nothing to attach",
        )
    if seen.attached:
        return CheckRow(HYGIENE, name, True, dev, prod, "the prod Traefik routes dev")
    return CheckRow(
        HYGIENE,
        name,
        False,
        dev,
        prod,
        f"the prod Traefik is not on {seen.network}, so dev is unreachable: "
        f"./stack dev deploy attaches it (or docker network connect "
        f"{seen.network} {seen.traefik})",
    )


def dotenv_row(values: Mapping[str, str], example: Mapping[str, str]) -> CheckRow:
    """`.env` as it may be shown (secrets masked), failing while a secret still holds the
    placeholder from .env.example."""
    placeholders = dotenv.placeholders(values, example)
    shown = ", ".join(f"{k}={dotenv.mask(k, v)}" for k, v in values.items())
    detail = shown
    if placeholders:
        detail = f"still the .env.example value: {', '.join(placeholders)}. {shown}"
    return CheckRow(HYGIENE, ".env", not placeholders, detail=detail)
