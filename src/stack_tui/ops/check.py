"""`./stack check`: gather what Compose renders and what the engine runs, then compare.

Read-only and lock-free, so it can run at any time. It never raises: a check
that cannot run (engine down, a broken compose file, a forbidden variable) is
a failing row saying what to do. The comparisons are in core/parity.py.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import requests

from stack_tui.core import (
    backups,
    compose,
    dotenv,
    endpoints,
    engine,
    guard,
    notify,
    records,
    staleness,
)
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
from stack_tui.core.prepared import Prepared, prepare
from stack_tui.ops import alerts, offsite
from stack_tui.ops.status import database_state

__all__ = ["SECTIONS", "CheckReport", "CheckRow", "run_checks"]

ONEOFF_LABEL = "com.docker.compose.oneoff"


def run_checks(platform: Platform, client: docker.DockerClient | None = None) -> CheckReport:
    """Every parity, drift and hygiene row for the platform; secrets from .env redacted."""
    dev_env, prod_env = platform.dev, platform.prod
    values: dict[str, str] = {}
    hygiene: list[CheckRow] = []
    try:
        values = dotenv.parse(platform.dotenv)
        hygiene.append(forbidden_row(guard.forbidden_found(platform.dotenv, values=values)))
        hygiene.append(dotenv_row(values, dotenv.example(platform.root)))
    except StackError as err:
        # .env is unreadable: the process environment is all that can still be checked.
        hygiene.append(forbidden_row(guard.forbidden_found(Path(os.devnull))))
        hygiene.append(error_row(HYGIENE, ".env", err.message, err.hint))

    hygiene.append(offsite.check_row(platform))
    hygiene.append(engines_row(platform))

    structural: list[CheckRow] = []
    configs: dict[str, Config] = {}
    prepared: dict[str, Prepared] = {}
    try:
        prepared = {name: prepare(platform.env(name)) for name in ENV_NAMES}
        configs = {name: compose.render_config(prepared[name]) for name in ENV_NAMES}
        domains = {env.name: _domain(env, values) for env in (dev_env, prod_env)}
        structural = structural_rows(
            configs["dev"], configs["prod"], _on_its_host(dev_env), _on_its_host(prod_env), domains
        )
    except StackError as err:
        structural = [
            error_row(section, "Compose config", err.message, err.hint)
            for section in (SAME, DIFFERENT)
        ]

    try:
        clients = (
            {name: client for name in ENV_NAMES}
            if client is not None
            else engine.for_envs(platform.dev, platform.prod)
        )
        drift, engine_hygiene = _engine_rows(platform, prepared, configs, clients)
    except (StackError, docker.errors.DockerException, requests.RequestException) as err:
        # Connection failures are StackErrors already; this also covers an engine that
        # answers with an error or too slowly.
        message, hint = (err.message, err.hint) if isinstance(err, StackError) else (str(err), "")
        drift = [error_row(DRIFT, "Docker engine", message, hint)]
        engine_hygiene = [error_row(HYGIENE, "Docker engine", message, hint)]
    hygiene += [backups_row(platform, values), notifications_row(values)]
    rows = (*structural, *drift, *hygiene, *engine_hygiene)
    return CheckReport(rows).redacted(dotenv.secret_values(values))


def backups_row(platform: Platform, values: dict[str, str]) -> CheckRow:
    """Fails while an environment's newest good or drilled backup is older than its limit."""
    cells: dict[str, str] = {}
    problems: list[str] = []
    for name in ENV_NAMES:
        try:
            limits = staleness.limits(values, name)
        except StackError as err:
            cells[name] = "bad limit"
            problems.append(f"{err.message} {err.hint}")
            continue
        stale = staleness.evaluate(name, backups.list_backups(platform.backups_dir, name), limits)
        if limits.backup is None and limits.drill is None:
            cells[name] = "no limits"
        else:
            cells[name] = "STALE" if stale else "fresh"
        problems += [s.message() for s in stale]
        alerts.staleness_seen(platform, platform.env(name), stale)
    return CheckRow(
        HYGIENE,
        "backups fresh",
        not problems,
        dev=cells["dev"],
        prod=cells["prod"],
        detail="; ".join(problems)
        or "newest good and drilled backups within their limits "
        "(STACK_{DEV,PROD}_MAX_{BACKUP,DRILL}_AGE)",
    )


def notifications_row(values: dict[str, str]) -> CheckRow:
    ok, detail = notify.check_urls(values)
    return CheckRow(HYGIENE, "notifications", ok, detail=detail)


def _domain(env: Environment, values: dict[str, str]) -> str:
    """The value Compose interpolates: the process environment wins over .env."""
    return compose.process_env(env).get(env.domain_var) or values.get(env.domain_var, "")


def _on_its_host(env: Environment) -> Environment:
    """The env with its data directory where its bind mounts live: the data root on its
    engine's host when it has one (STACK_{ENV}_DATA_ROOT), else this machine's."""
    try:
        root = endpoints.resolve(env).data_root
    except StackError:
        return env  # the Engines row says why
    return dataclasses.replace(env, data_dir=Path(root)) if root else env


def engines_row(platform: Platform) -> CheckRow:
    """Each env's engine; both on one engine under one project name would be one project
    that two environments deploy over each other: refused."""
    found: dict[str, endpoints.Endpoint] = {}
    shown: dict[str, str] = {}
    for name in ENV_NAMES:
        try:
            found[name] = endpoints.resolve(platform.env(name))
            shown[name] = found[name].via or found[name].host
        except StackError as err:
            shown[name] = err.message
    if len(found) < len(ENV_NAMES):
        return CheckRow(
            HYGIENE,
            "Engines",
            False,
            shown["dev"],
            shown["prod"],
            "; ".join(v for k, v in shown.items() if k not in found),
        )
    same = found["dev"].host == found["prod"].host
    if same and platform.dev_project == platform.prod_project:
        return CheckRow(
            HYGIENE,
            "Engines",
            False,
            shown["dev"],
            shown["prod"],
            f"dev and prod are the same project ({platform.dev_project}) on the same engine: "
            "each deploy would replace the other environment. Point one of them at another "
            "engine (STACK_DEV_ENGINE / STACK_PROD_ENGINE) or give the projects their names.",
        )
    return CheckRow(HYGIENE, "Engines", True, shown["dev"], shown["prod"])


def _engine_rows(
    platform: Platform,
    prepared: dict[str, Prepared],
    configs: dict[str, Config],
    clients: dict[str, docker.DockerClient],
) -> tuple[list[CheckRow], list[CheckRow]]:
    """(drift rows, hygiene rows) that need the engines (each env's own: core.endpoints)."""
    states = {
        name: _env_state(platform.env(name), prepared.get(name), configs.get(name), clients[name])
        for name in ENV_NAMES
    }
    created = {
        c.image_id: _created(clients[name], c.image_id)
        for name, state in states.items()
        for c in state.containers
    }
    return drift_rows(states["dev"], states["prod"], created), [
        orphans_row(_orphans(platform, clients)),
        _traefik_row(platform, clients),
        _restores_row(platform, clients),
        _backup_dates_row(platform),
        _rollback_images_row(platform, clients),
    ]


def _traefik_row(platform: Platform, clients: dict[str, docker.DockerClient]) -> CheckRow:
    """The prod Traefik routes dev when both share an engine; on two engines it cannot."""
    if clients["dev"] is clients["prod"]:
        return traefik_attachment_row(_attachment(platform, clients))
    return CheckRow(
        HYGIENE,
        "Traefik on dev network",
        True,
        "on its own engine",
        "on its own engine",
        "dev and prod are on different engines: the prod Traefik cannot route dev (give dev "
        "an ingress on its own host)",
    )


def _rollback_images_row(platform: Platform, clients: dict[str, docker.DockerClient]) -> CheckRow:
    """The images the newest deploy records need for a rollback must still be here."""
    gone: dict[str, list[str]] = {}
    for name in ENV_NAMES:
        here = records.image_digests(clients[name])
        gone[name] = [
            f"{service} {state.short_image()} (before {record_id})"
            for record_id, service, state in records.needed_images(records.history(platform, name))
            if state.image_id not in here
        ]
    if not any(gone.values()):
        return CheckRow(HYGIENE, "Rollback images", True, "all present", "all present")
    return CheckRow(
        HYGIENE,
        "Rollback images",
        False,
        ", ".join(gone["dev"]) or "all present",
        ", ".join(gone["prod"]) or "all present",
        "Images a rollback needs are gone (pruned?): rolling back past those deploys is "
        "refused. Rebuild or pull them (the ID must match); 'docker image prune -a' removes "
        "images that no container uses.",
    )


def _restores_row(platform: Platform, clients: dict[str, docker.DockerClient]) -> CheckRow:
    """The databases restores keep (with their size), and anything an interrupted one left."""
    shown: dict[str, str] = {}
    notes = []
    for name in ENV_NAMES:
        env = platform.env(name)
        state = database_state(platform, env, clients[name])
        if state is None:
            shown[name] = "Postgres not running"
            continue
        shown[name] = (
            ", ".join(f"{c.name} ({backups.human_size(c.size)})" for c in state.copies) or "no copy"
        )
        repair = "./stack backup repair" + (" --dev" if name == "dev" else "")
        notes += [f"{name}: {problem} (fix: {repair})" for problem in state.problems]
    return CheckRow(HYGIENE, "Restores", not notes, shown["dev"], shown["prod"], "; ".join(notes))


def _backup_dates_row(platform: Platform) -> CheckRow:
    """Backups named after a future time never count as newest and are never pruned."""
    future = {
        name: [
            b.name
            for b in backups.list_backups(platform.backups_dir, name)
            if backups.future_dated(b)
        ]
        for name in ENV_NAMES
    }
    found = future["dev"] + future["prod"]
    detail = (
        (
            f"named in the future (a wrong clock, or copied in): {', '.join(found)}; they "
            "never count as the newest backup and are never pruned: check the clock, then "
            "rename or remove them"
        )
        if found
        else ""
    )
    return CheckRow(
        HYGIENE,
        "Backup dates",
        not found,
        f"{len(future['dev'])} in the future",
        f"{len(future['prod'])} in the future",
        detail,
    )


def _env_state(
    env: Environment,
    prepared: Prepared | None,
    config: Config | None,
    client: docker.DockerClient,
) -> EnvState:
    if config is None or prepared is None:
        return EnvState({}, {}, error="the compose config could not be rendered")
    try:
        hashes = _config_hashes(prepared)
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


def _config_hashes(prepared: Prepared) -> dict[str, str]:
    """The config hash Compose would record on each service's container if deployed now
    (the same value as the com.docker.compose.config-hash label); creates nothing."""
    done = compose.run(prepared, "config", "--hash", "*")
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


def _orphans(platform: Platform, clients: dict[str, docker.DockerClient]) -> list[Orphan]:
    """Orphaned volumes (sized by the engine) and bind-mount data that a run from compose/
    without --project-directory wrote next to the compose files."""
    found: list[Orphan] = []
    for client in {id(c): c for c in clients.values()}.values():  # each engine once
        volumes = [v.attrs for v in engine.call(lambda: client.volumes.list())]  # noqa: B023
        orphans = orphan_volumes(volumes, platform.dev, platform.prod)
        if orphans:
            usage: list[dict[str, Any]] = engine.call(client.df).get("Volumes") or []
            sizes = {v.get("Name"): (v.get("UsageData") or {}).get("Size") for v in usage}
            found += [Orphan(o.env, o.name, o.project, sizes.get(o.name)) for o in orphans]
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


def _attachment(platform: Platform, clients: dict[str, docker.DockerClient]) -> TraefikAttachment:
    network = platform.dev.network
    try:
        engine.call(lambda: clients["dev"].networks.get(network))
        exists = True
    except docker.errors.NotFound:
        exists = False
    traefik = engine.service_container(clients["prod"], platform.prod_project, "traefik")
    if traefik is None:
        return TraefikAttachment(network, exists, "", False, False)
    networks = (traefik.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return TraefikAttachment(
        network, exists, traefik.name, traefik.status == "running", network in networks
    )
