"""Drift: what runs against what Compose would deploy now (config hashes, images)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from stack_tui.core.parity.configs import listed
from stack_tui.core.parity.report import DRIFT, CheckRow


@dataclass(frozen=True)
class Deployed:
    """One container Compose made for a service, as the engine reports it."""

    service: str
    config_hash: str
    image_id: str


@dataclass(frozen=True)
class EnvState:
    """One environment's drift inputs: what Compose would compute now, and what runs."""

    hashes: Mapping[str, str]  # service -> config hash of the compose files now
    image_ids: Mapping[str, str]  # service -> ID its image name points at now ("" if unknown)
    containers: tuple[Deployed, ...] = ()
    error: str = ""


def _drift(state: EnvState) -> tuple[list[str], list[str], list[str], list[str]]:
    """(config changed, image changed, missing, extra) services."""
    changed: set[str] = set()
    new_image: set[str] = set()
    for c in state.containers:
        if c.service in state.hashes and c.config_hash != state.hashes[c.service]:
            changed.add(c.service)
        current = state.image_ids.get(c.service)
        if current and c.image_id != current:
            new_image.add(c.service)
    running = {c.service for c in state.containers}
    return (
        sorted(changed),
        sorted(new_image),
        sorted(set(state.hashes) - running),
        sorted(running - set(state.hashes)),
    )


def drift_rows(dev: EnvState, prod: EnvState, created: Mapping[str, str]) -> list[CheckRow]:
    """Config drift and missing/extra services per env, then dev vs prod images.
    `created` maps image IDs to their creation time, to tell which side is ahead."""
    config: dict[str, str] = {}
    services: dict[str, str] = {}
    config_ok = services_ok = True
    for name, state in (("dev", dev), ("prod", prod)):
        if state.error:
            config[name] = services[name] = state.error
            config_ok = services_ok = False
            continue
        if not state.containers:
            config[name] = services[name] = "not deployed"
            continue
        changed, new_image, missing, extra = _drift(state)
        parts = [f"changed since deploy: {listed(changed)}"] if changed else []
        parts += [f"newer image available: {listed(new_image)}"] if new_image else []
        config[name] = "; ".join(parts) or "in sync"
        config_ok = config_ok and not parts
        gaps = [
            f"{label}: {listed(found)}"
            for label, found in (("missing", missing), ("extra", extra))
            if found
        ]
        services[name] = "; ".join(gaps) or f"all {len(state.hashes)} present"
        services_ok = services_ok and not gaps
    return [
        CheckRow(
            DRIFT,
            "Config",
            config_ok,
            config["dev"],
            config["prod"],
            "" if config_ok else "a deploy would recreate these",
        ),
        CheckRow(
            DRIFT,
            "Services",
            services_ok,
            services["dev"],
            services["prod"],
            "" if services_ok else "a deploy would create the missing and remove the extra",
        ),
        images_row(dev, prod, created),
    ]


def images_row(dev: EnvState, prod: EnvState, created: Mapping[str, str]) -> CheckRow:
    """Which services run different images in dev and prod. Informational: dev running
    ahead of prod is the normal state between a dev and a prod deploy."""

    def by_service(state: EnvState) -> dict[str, str]:
        return {c.service: c.image_id for c in state.containers}

    d, p = by_service(dev), by_service(prod)
    if not d or not p:
        return CheckRow(
            DRIFT,
            "Images",
            True,
            "" if d else "not deployed",
            "" if p else "not deployed",
            "nothing to compare",
        )
    differ = sorted(n for n in d.keys() & p.keys() if d[n] != p[n])
    if not differ:
        return CheckRow(DRIFT, "Images", True, "same as prod", "same as dev")
    ahead: dict[str, list[str]] = {"dev": [], "prod": []}
    for name in differ:
        newer = _when(created.get(d[name])) >= _when(created.get(p[name]))
        ahead["dev" if newer else "prod"].append(name)
    detail = "; ".join(
        f"{side} is ahead of {'prod' if side == 'dev' else 'dev'} on: {', '.join(names)}"
        for side, names in ahead.items()
        if names
    )
    return CheckRow(
        DRIFT,
        "Images",
        True,
        ", ".join(f"{n} {_short(d[n])}" for n in differ),
        ", ".join(f"{n} {_short(p[n])}" for n in differ),
        detail,
    )


def _when(stamp: str | None) -> float:
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
