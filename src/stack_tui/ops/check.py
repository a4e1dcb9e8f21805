"""`./stack check`: gather what Compose renders and what the engine runs, then compare.

Read-only and lock-free, so it can run at any time. It never raises: a check
that cannot run (engine down, a broken compose file, a forbidden variable) is
a failing row saying what to do. The comparisons are in core/parity.py.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import requests

from stack_tui.core import compose, dotenv, engine, guard
from stack_tui.core.environments import ENV_NAMES, Environment, Platform
from stack_tui.core.errors import StackError
from stack_tui.core.parity import (
    DIFFERENT,
    DRIFT,
    HYGIENE,
    SAME,
    SECTIONS,
    CheckReport,
    CheckRow,
    Config,
    Deployed,
    EnvState,
    Orphan,
    TraefikAttachment,
    dotenv_row,
    drift_rows,
    error_row,
    forbidden_row,
    orphan_volumes,
    orphans_row,
    structural_rows,
    traefik_attachment_row,
)
from stack_tui.ops import offsite

__all__ = ["SECTIONS", "CheckReport", "CheckRow", "run_checks"]

ONEOFF_LABEL = "com.docker.compose.oneoff"


def run_checks(platform: Platform, client: docker.DockerClient | None = None) -> CheckReport:
    """Every parity, drift and hygiene row for the platform; secrets from .env redacted."""
    dev_env, prod_env = platform.dev, platform.prod
    values: dict[str, str] = {}
    hygiene: list[CheckRow] = []
    try:
        values = dotenv.parse(platform.dotenv)
        hygiene.append(forbidden_row(guard.forbidden_found(platform.dotenv)))
        hygiene.append(dotenv_row(values, _example(platform)))
    except StackError as err:
        # .env is unreadable: the process environment is all that can still be checked.
        hygiene.append(forbidden_row(guard.forbidden_found(Path(os.devnull))))
        hygiene.append(error_row(HYGIENE, ".env", err.message, err.hint))

    hygiene.append(offsite.check_row(platform))

    structural: list[CheckRow] = []
    configs: dict[str, Config] = {}
    try:
        configs = {name: compose.render_config(platform.env(name)) for name in ENV_NAMES}
        domains = {env.name: _domain(env, values) for env in (dev_env, prod_env)}
        structural = structural_rows(configs["dev"], configs["prod"], dev_env, prod_env, domains)
    except StackError as err:
        structural = [
            error_row(section, "Compose config", err.message, err.hint)
            for section in (SAME, DIFFERENT)
        ]

    try:
        drift, engine_hygiene = _engine_rows(platform, configs, client or engine.client())
    except (StackError, docker.errors.DockerException, requests.RequestException) as err:
        # Connection failures are StackErrors already; this also covers an engine that
        # answers with an error or too slowly.
        message, hint = (err.message, err.hint) if isinstance(err, StackError) else (str(err), "")
        drift = [error_row(DRIFT, "Docker engine", message, hint)]
        engine_hygiene = [error_row(HYGIENE, "Docker engine", message, hint)]
    rows = (*structural, *drift, *hygiene, *engine_hygiene)
    return CheckReport(rows).redacted(dotenv.secret_values(values))


def _example(platform: Platform) -> dict[str, str]:
    example = platform.root / ".env.example"
    return dotenv.parse(example) if example.is_file() else {}


def _domain(env: Environment, values: dict[str, str]) -> str:
    """The value Compose interpolates: the process environment wins over .env."""
    return compose.process_env(env).get(env.domain_var) or values.get(env.domain_var, "")


def _engine_rows(
    platform: Platform, configs: dict[str, Config], client: docker.DockerClient
) -> tuple[list[CheckRow], list[CheckRow]]:
    """(drift rows, hygiene rows) that need the engine."""
    states = {name: _env_state(platform.env(name), configs.get(name), client) for name in ENV_NAMES}
    image_ids = {c.image_id for state in states.values() for c in state.containers}
    created = {image_id: _created(client, image_id) for image_id in image_ids}
    return drift_rows(states["dev"], states["prod"], created), [
        orphans_row(_orphans(platform, client)),
        traefik_attachment_row(_attachment(platform, client)),
    ]


def _env_state(env: Environment, config: Config | None, client: docker.DockerClient) -> EnvState:
    if config is None:
        return EnvState({}, {}, error="the compose config could not be rendered")
    try:
        hashes = _config_hashes(env)
    except StackError as err:
        return EnvState({}, {}, error=err.message)
    containers = tuple(
        Deployed(
            c.labels.get(engine.SERVICE_LABEL, "?"),
            c.labels.get(engine.CONFIG_HASH_LABEL, ""),
            c.attrs.get("Image", ""),
        )
        for c in engine.project_containers(client, env.project)
        if c.labels.get(ONEOFF_LABEL) != "True"
    )
    images = {
        name: _image_id(client, str(svc.get("image", "")))
        for name, svc in (config.get("services") or {}).items()
    }
    return EnvState(hashes, images, containers)


def _config_hashes(env: Environment) -> dict[str, str]:
    """The config hash Compose would record on each service's container if deployed now
    (the same value as the com.docker.compose.config-hash label); creates nothing."""
    done = compose.run(env, "config", "--hash", "*")
    pairs = (line.split() for line in done.stdout.splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _image_id(client: docker.DockerClient, name: str) -> str:
    """The ID the image name points at now ("" when the image is not on this host)."""
    if not name:
        return ""
    try:
        return str(engine.call(lambda: client.images.get(name)).id)
    except docker.errors.NotFound:
        return ""


def _created(client: docker.DockerClient, image_id: str) -> str:
    try:
        return str(engine.call(lambda: client.images.get(image_id)).attrs.get("Created", ""))
    except docker.errors.NotFound:
        return ""


def _orphans(platform: Platform, client: docker.DockerClient) -> list[Orphan]:
    """Orphaned volumes (sized by the engine) and bind-mount data that a run from compose/
    without --project-directory wrote next to the compose files."""
    volumes = [v.attrs for v in engine.call(lambda: client.volumes.list())]
    found = orphan_volumes(volumes, platform.dev, platform.prod)
    if found:
        usage: list[dict[str, Any]] = engine.call(client.df).get("Volumes") or []
        sizes = {v.get("Name"): (v.get("UsageData") or {}).get("Size") for v in usage}
        found = [Orphan(o.env, o.name, o.project, sizes.get(o.name)) for o in found]
    for env in (platform.dev, platform.prod):
        for mount in env.bind_mounts:
            path = platform.compose / "data" / mount
            size = _stray_size(path)
            if size is not None:
                found.append(Orphan(env.name, str(path), "", size))
    return found


def _stray_size(path: Path) -> int | None:
    """Bytes in the files under `path`; None when it holds no file (unreadable ones count 0)."""
    sizes = []
    for root, _, files in os.walk(path):
        for name in files:
            with suppress(OSError):
                sizes.append((Path(root) / name).lstat().st_size)
    return sum(sizes) if sizes else None


def _attachment(platform: Platform, client: docker.DockerClient) -> TraefikAttachment:
    network = platform.dev.network
    try:
        engine.call(lambda: client.networks.get(network))
        exists = True
    except docker.errors.NotFound:
        exists = False
    traefik = engine.service_container(client, platform.prod_project, "traefik")
    if traefik is None:
        return TraefikAttachment(network, exists, "", False, False)
    networks = (traefik.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return TraefikAttachment(
        network, exists, traefik.name, traefik.status == "running", network in networks
    )
