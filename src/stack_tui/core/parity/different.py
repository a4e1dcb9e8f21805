"""The spec's "What Should Be Different" table, one row function per line of it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stack_tui.core import dotenv
from stack_tui.core.backups import human_size
from stack_tui.core.environments import Environment
from stack_tui.core.parity.configs import (
    BACKTICKED,
    HOST_RULE,
    PROD_RESTART,
    TRAEFIK,
    labels_of,
    listed,
    services_of,
)
from stack_tui.core.parity.report import DIFFERENT, CheckRow, Config


def project_row(dev: Config, prod: Config, dev_env: Environment, prod_env: Environment) -> CheckRow:
    d, p = str(dev.get("name", "")), str(prod.get("name", ""))
    ok = d == dev_env.project and p == prod_env.project and d != p
    return CheckRow(
        DIFFERENT,
        "Project name",
        ok,
        d,
        p,
        "" if ok else f"expected {dev_env.project} / {prod_env.project}",
    )


def _data_sources(config: Config, env: Environment) -> set[str]:
    """Named volumes (full names) and bind-mounted host paths (data/... when under the data
    directory) that hold data; the Docker socket Traefik mounts is not data."""
    volumes = config.get("volumes") or {}
    found: set[str] = set()
    for svc in services_of(config).values():
        for mount in svc.get("volumes") or []:
            source = str(mount.get("source") or "")
            if mount.get("type") == "volume" and source:
                found.add(str((volumes.get(source) or {}).get("name") or source))
            elif mount.get("type") == "bind" and not source.endswith(".sock"):
                path = Path(source)
                found.add(
                    f"data/{path.relative_to(env.data_dir)}"
                    if path.is_relative_to(env.data_dir)
                    else source
                )
    return found


def data_row(dev: Config, prod: Config, dev_env: Environment, prod_env: Environment) -> CheckRow:
    d, p = _data_sources(dev, dev_env), _data_sources(prod, prod_env)
    notes = []
    for env, found in ((dev_env, d), (prod_env, p)):
        expected = {env.postgres_volume, *(f"data/{m}" for m in env.bind_mounts)}
        if expected - found:
            notes.append(f"{env.name} lacks {listed(expected - found)}")
    if d & p:
        notes.append(f"shared by dev and prod: {listed(d & p)}")
    return CheckRow(
        DIFFERENT, "Data (volumes, bind mounts)", not notes, listed(d), listed(p), "; ".join(notes)
    )


def _database(config: Config) -> tuple[str, str]:
    """POSTGRES_DB, and the database in the agent's DATABASE_URL (the URL itself is secret)."""
    services = services_of(config)
    db = str(((services.get("postgres") or {}).get("environment") or {}).get("POSTGRES_DB", ""))
    url = ((services.get("agent") or {}).get("environment") or {}).get("DATABASE_URL")
    return db, urlsplit(str(url)).path.lstrip("/") if url else ""


def database_row(
    dev: Config, prod: Config, dev_env: Environment, prod_env: Environment
) -> CheckRow:
    notes = []
    shown = {}
    for env, config in (("dev", dev), ("prod", prod)):
        expected = (dev_env if env == "dev" else prod_env).db_name
        db, agent_db = _database(config)
        shown[env] = db if agent_db in ("", db) else f"{db} (agent uses {agent_db})"
        if db != expected:
            notes.append(f"{env} POSTGRES_DB is {db or '(unset)'}, expected {expected}")
        if agent_db and agent_db != expected:
            notes.append(f"{env} agent's DATABASE_URL names {agent_db}, expected {expected}")
    return CheckRow(
        DIFFERENT, "Database name", not notes, shown["dev"], shown["prod"], "; ".join(notes)
    )


def _hosts(config: Config) -> set[str]:
    return {
        host
        for svc in services_of(config).values()
        for key, value in labels_of(svc).items()
        if key.startswith("traefik.http.routers.") and key.endswith(".rule")
        for args in HOST_RULE.findall(value)
        for host in BACKTICKED.findall(args)
    }


def domain_row(
    dev: Config,
    prod: Config,
    dev_env: Environment,
    prod_env: Environment,
    domains: Mapping[str, str],
) -> CheckRow:
    """Router Host rules use DOMAIN_DEV in dev and DOMAIN in prod, and the two differ.
    `domains` holds those values from .env ({} when .env could not be read)."""
    d, p = _hosts(dev), _hosts(prod)
    notes = []
    for env, hosts in ((dev_env, d), (prod_env, p)):
        expected = domains.get(env.name)
        if not hosts:
            notes.append(f"no {env.name} router has a Host rule")
        elif expected and hosts != {expected}:
            notes.append(
                f"{env.name} routers should use {env.domain_var}="
                f"{dotenv.mask(env.domain_var, expected)}"
            )
    if d & p:
        notes.append(f"both route {listed(d & p)}")
    return CheckRow(DIFFERENT, "Domain", not notes, listed(d), listed(p), "; ".join(notes))


def agent_environment_row(
    dev: Config, prod: Config, dev_env: Environment, prod_env: Environment
) -> CheckRow:
    def value(config: Config) -> str:
        agent = services_of(config).get("agent")
        if agent is None:
            return "(no agent service)"
        return str((agent.get("environment") or {}).get("AGENT_ENVIRONMENT", "(unset)"))

    d, p = value(dev), value(prod)
    ok = d == dev_env.agent_environment and p == prod_env.agent_environment
    return CheckRow(
        DIFFERENT,
        "AGENT_ENVIRONMENT",
        ok,
        d,
        p,
        "" if ok else f"expected {dev_env.agent_environment} / {prod_env.agent_environment}",
    )


def restart_row(dev: Config, prod: Config) -> CheckRow:
    dev_bad = {
        n: s.get("restart")
        for n, s in services_of(dev).items()
        if s.get("restart") not in (None, "", "no")
    }
    prod_bad = {
        n: s.get("restart") or "no"
        for n, s in services_of(prod).items()
        if s.get("restart") != PROD_RESTART
    }
    notes = []
    if dev_bad:
        notes.append("dev restarts nothing (it may crash)")
    if prod_bad:
        notes.append(f"prod restarts every service {PROD_RESTART}")
    return CheckRow(
        DIFFERENT,
        "Restart policy",
        not notes,
        "; ".join(f"{n}: {v}" for n, v in sorted(dev_bad.items())) or "none",
        "; ".join(f"{n}: {v}" for n, v in sorted(prod_bad.items())) or f"all {PROD_RESTART}",
        "; ".join(notes),
    )


def _reservation(service: Mapping[str, Any]) -> str:
    reserved = ((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
    parts = []
    for key, value in sorted(reserved.items()):
        is_bytes = key == "memory" and str(value).isdigit()
        parts.append(f"{key}={human_size(int(value)) if is_bytes else value}")
    return " ".join(parts)


def reservations_row(dev: Config, prod: Config) -> CheckRow:
    dev_bad = {n: _reservation(s) for n, s in services_of(dev).items() if _reservation(s)}
    prod_missing = sorted(n for n, s in services_of(prod).items() if not _reservation(s))
    notes = []
    if dev_bad:
        notes.append("dev reserves nothing")
    if prod_missing:
        notes.append(f"prod reserves resources for every service; missing: {listed(prod_missing)}")
    return CheckRow(
        DIFFERENT,
        "Resource reservations",
        not notes,
        "; ".join(f"{n}: {v}" for n, v in sorted(dev_bad.items())) or "none",
        f"none for {listed(prod_missing)}" if prod_missing else "all services",
        "; ".join(notes),
    )


def traefik_row(dev: Config, prod: Config) -> CheckRow:
    in_dev, in_prod = TRAEFIK in services_of(dev), TRAEFIK in services_of(prod)
    notes = [
        note
        for note, bad in (
            ("dev must not run its own Traefik", in_dev),
            ("prod must run Traefik", not in_prod),
        )
        if bad
    ]
    return CheckRow(
        DIFFERENT,
        "Traefik",
        not notes,
        "runs in dev" if in_dev else "absent (the prod Traefik joins the dev network)",
        "runs in the stack" if in_prod else "absent",
        "; ".join(notes),
    )


def _traefik_names(config: Config) -> set[str]:
    """Router, service and middleware names: Traefik keeps them global across projects."""
    found = set()
    for svc in services_of(config).values():
        for key in labels_of(svc):
            parts = key.split(".")
            if (
                len(parts) > 3
                and parts[:2] == ["traefik", "http"]
                and parts[2] in ("routers", "services", "middlewares")
            ):
                found.add(parts[3])
    return found


def router_names_row(dev: Config, prod: Config) -> CheckRow:
    d, p = _traefik_names(dev), _traefik_names(prod)
    notes = [
        f"{env} names without the {env}- prefix: {listed(bad)}"
        for env, bad in (
            ("dev", {n for n in d if not n.startswith("dev-")}),
            ("prod", {n for n in p if not n.startswith("prod-")}),
        )
        if bad
    ]
    if d & p:
        notes.append(f"in both (one would shadow the other): {listed(d & p)}")
    return CheckRow(DIFFERENT, "Router names", not notes, listed(d), listed(p), "; ".join(notes))


def _traefik_networks(config: Config, env: Environment) -> tuple[set[str], list[str]]:
    networks = config.get("networks") or {}
    found: set[str] = set()
    bad: list[str] = []
    for name, svc in sorted(services_of(config).items()):
        labels = labels_of(svc)
        if labels.get("traefik.enable") != "true":
            continue
        value = labels.get("traefik.docker.network", "(unset)")
        found.add(value)
        joined = {
            str((networks.get(key) or {}).get("name") or key) for key in (svc.get("networks") or {})
        }
        if value != env.network or value not in joined:
            bad.append(f"{env.name} {name}: {value}")
    return found, bad


def traefik_network_row(
    dev: Config, prod: Config, dev_env: Environment, prod_env: Environment
) -> CheckRow:
    d, dev_bad = _traefik_networks(dev, dev_env)
    p, prod_bad = _traefik_networks(prod, prod_env)
    detail = (
        f"traefik.docker.network must be the full name the service joins "
        f"({dev_env.network} / {prod_env.network}): {', '.join(dev_bad + prod_bad)}"
        if dev_bad or prod_bad
        else ""
    )
    return CheckRow(DIFFERENT, "Traefik network", not detail, listed(d), listed(p), detail)
