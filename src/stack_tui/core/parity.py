"""Pure comparisons behind `./stack check`: parity, drift and hygiene rows.

Everything here works on plain data (the configs Compose renders, container
facts, volume listings) so each rule can be unit-tested by feeding dicts; the
gathering from Compose and the engine lives in ops/check.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stack_tui.core import dotenv
from stack_tui.core.backups import human_size
from stack_tui.core.environments import Environment

SAME = "parity-same"
DIFFERENT = "parity-different"
DRIFT = "drift"
HYGIENE = "hygiene"
SECTIONS = (SAME, DIFFERENT, DRIFT, HYGIENE)

TRAEFIK = "traefik"
TRAEFIK_TARGET_PORTS = {80, 443}
PROD_RESTART = "unless-stopped"
LOGGING_DRIVER = "json-file"
_HOST = re.compile(r"Host\(([^)]*)\)")
_BACKTICKED = re.compile(r"`([^`]*)`")

Config = Mapping[str, Any]


@dataclass(frozen=True)
class CheckRow:
    """One line of a check table: both environments' values, and whether it holds."""

    section: str
    name: str
    ok: bool
    dev: str = ""
    prod: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckReport:
    """Every row of one check run; front ends print it, `--json` dumps `to_dict()`."""

    rows: tuple[CheckRow, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def failures(self) -> list[CheckRow]:
        return [row for row in self.rows if not row.ok]

    def section(self, name: str) -> list[CheckRow]:
        return [row for row in self.rows if row.section == name]

    def row(self, section: str, name: str) -> CheckRow:
        """The row called `name` in `section` (KeyError if it was not checked)."""
        for candidate in self.rows:
            if (candidate.section, candidate.name) == (section, name):
                return candidate
        raise KeyError(f"{section}/{name}")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": [row.to_dict() for row in self.rows]}

    def redacted(self, secrets: list[str]) -> CheckReport:
        """The same report with every secret value from `.env` replaced by ***, wherever it
        leaked into a value (a healthcheck command, a label)."""
        return CheckReport(
            tuple(
                replace(
                    row,
                    dev=dotenv.redact(row.dev, secrets),
                    prod=dotenv.redact(row.prod, secrets),
                    detail=dotenv.redact(row.detail, secrets),
                )
                for row in self.rows
            )
        )


def error_row(section: str, name: str, message: str, hint: str = "") -> CheckRow:
    """A check that could not run is a failure, with what to do about it."""
    return CheckRow(section, name, False, detail=f"{message} {hint}".strip())


# --- helpers over rendered configs --------------------------------------------------------------


def _services(config: Config) -> dict[str, Any]:
    return dict(config.get("services") or {})


def _app_services(config: Config) -> dict[str, Any]:
    """The platform's own services: Traefik runs in prod only, by design."""
    return {name: svc for name, svc in _services(config).items() if name != TRAEFIK}


def _labels(service: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("labels") or {}).items()}


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _differing(dev: Mapping[str, str], prod: Mapping[str, str]) -> tuple[str, str, list[str]]:
    """Only the entries that differ, side by side, and their keys."""
    keys = sorted(k for k in dev.keys() | prod.keys() if dev.get(k) != prod.get(k))
    show = "; ".join
    return (
        show(f"{k}: {dev.get(k, '(absent)')}" for k in keys),
        show(f"{k}: {prod.get(k, '(absent)')}" for k in keys),
        keys,
    )


def _timing(block: Mapping[str, Any]) -> str:
    parts = [
        f"{key}={block[key]}"
        for key in ("interval", "timeout", "retries", "start_period", "start_interval")
        if key in block
    ]
    return " ".join(parts)


def _healthcheck(service: Mapping[str, Any]) -> str:
    check = service.get("healthcheck")
    if not check:
        return "(none)"
    if check.get("disable"):
        return "(disabled)"
    test = check.get("test")
    if isinstance(test, list):
        kind, *argv = test or ["NONE"]
        command = argv[0] if kind == "CMD-SHELL" and argv else " ".join(argv) or kind
    else:
        command = str(test)
    return f"{command} [{_timing(check)}]"


def _logging(service: Mapping[str, Any]) -> str:
    log = service.get("logging") or {}
    options = " ".join(f"{k}={v}" for k, v in sorted((log.get("options") or {}).items()))
    return f"{log.get('driver', '(default)')} {options}".strip()


# --- What Must Be The Same ----------------------------------------------------------------------


def services_row(dev: Config, prod: Config) -> CheckRow:
    d, p = set(_app_services(dev)), set(_app_services(prod))
    notes = [
        f"only in {env}: {_names(names)}"
        for env, names in (("dev", d - p), ("prod", p - d))
        if names
    ]
    return CheckRow(
        SAME,
        "Services",
        d == p,
        _names(d),
        _names(p),
        "; ".join(notes) or "Traefik aside (prod only, by design)",
    )


def _published(config: Config, prod: bool) -> tuple[list[str], list[str]]:
    """Every host exposure as text, and those the design forbids (all but prod Traefik's)."""
    shown: list[str] = []
    forbidden: list[str] = []
    for name, svc in sorted(_services(config).items()):
        traefik_allowed = prod and name == TRAEFIK
        if svc.get("network_mode") == "host":
            shown.append(f"{name} network_mode=host")
            forbidden.append(shown[-1])
        for port in svc.get("ports") or []:
            text = (
                f"{name} {port.get('published') or '(random)'}->{port.get('target')}"
                f"/{port.get('protocol', 'tcp')}"
            )
            shown.append(text)
            if not (traefik_allowed and port.get("target") in TRAEFIK_TARGET_PORTS):
                forbidden.append(text)
    return shown, forbidden


def ports_row(dev: Config, prod: Config) -> CheckRow:
    dev_shown, dev_bad = _published(dev, prod=False)
    prod_shown, prod_bad = _published(prod, prod=True)
    traefik = _services(prod).get(TRAEFIK) or {}
    targets = {port.get("target") for port in traefik.get("ports") or []}
    notes = [f"not allowed: {', '.join(dev_bad + prod_bad)}"] if dev_bad or prod_bad else []
    if traefik and targets != TRAEFIK_TARGET_PORTS:
        notes.append(
            f"prod Traefik must publish container ports 80 and 443, publishes "
            f"{_names(str(t) for t in targets)}"
        )
    return CheckRow(
        SAME,
        "Port exposure",
        not notes,
        ", ".join(dev_shown) or "none",
        ", ".join(prod_shown) or "none",
        "; ".join(notes) or "no host ports but the prod Traefik's 80/443",
    )


def _common(dev: Config, prod: Config) -> list[str]:
    return sorted(set(_app_services(dev)) & set(_app_services(prod)))


def healthchecks_row(dev: Config, prod: Config) -> CheckRow:
    names = _common(dev, prod)
    d = {n: _healthcheck(_services(dev)[n]) for n in names}
    p = {n: _healthcheck(_services(prod)[n]) for n in names}
    dev_text, prod_text, keys = _differing(d, p)
    if not keys:
        return CheckRow(SAME, "Health checks", True, f"{len(d)} identical", f"{len(p)} identical")
    return CheckRow(
        SAME, "Health checks", False, dev_text, prod_text, f"differ on: {', '.join(keys)}"
    )


def _routers(labels: Mapping[str, str]) -> set[str]:
    return {
        key.split(".")[3]
        for key in labels
        if key.startswith("traefik.http.routers.") and key.count(".") > 3
    }


def _security_headers(config: Config, prefix: str) -> tuple[dict[str, str], list[str]]:
    """The env's security-header middleware with the env prefix taken out (so dev and prod
    compare equal) plus the middlewares each service's routers use, and the routers that
    do not use it."""
    own = f"{prefix}-security-headers"
    head = f"traefik.http.middlewares.{own}."
    settings: dict[str, str] = {}
    unprotected: list[str] = []
    for name, svc in sorted(_services(config).items()):
        labels = _labels(svc)
        settings.update({k[len(head) :]: v for k, v in labels.items() if k.startswith(head)})
        used: set[str] = set()
        for router in sorted(_routers(labels)):
            value = labels.get(f"traefik.http.routers.{router}.middlewares", "")
            middlewares = [m.strip() for m in value.split(",") if m.strip()]
            used.update(m.removeprefix(f"{prefix}-") for m in middlewares)
            if own not in middlewares:
                unprotected.append(f"{prefix} {router}")
        if used:
            settings[f"{name} routers use"] = ", ".join(sorted(used))
    return settings, unprotected


def security_headers_row(dev: Config, prod: Config) -> CheckRow:
    d, dev_open = _security_headers(dev, "dev")
    p, prod_open = _security_headers(prod, "prod")
    dev_text, prod_text, keys = _differing(d, p)
    notes = [f"differ on: {', '.join(keys)}"] if keys else []
    if not any(k for k in d if not k.endswith(" routers use")):
        notes.append("no security-headers middleware is defined")
    if dev_open or prod_open:
        notes.append(f"routers without the security headers: {', '.join(dev_open + prod_open)}")
    if not notes:
        summary = f"{len(d)} settings identical"
        return CheckRow(SAME, "Security headers", True, summary, summary)
    return CheckRow(
        SAME, "Security headers", False, dev_text or "-", prod_text or "-", "; ".join(notes)
    )


def logging_row(dev: Config, prod: Config) -> CheckRow:
    names = _common(dev, prod)
    d = {n: _logging(_services(dev)[n]) for n in names}
    p = {n: _logging(_services(prod)[n]) for n in names}
    everyone = [*_services(dev).items(), *_services(prod).items()]
    other_driver = sorted(
        {n for n, svc in everyone if (svc.get("logging") or {}).get("driver") != LOGGING_DRIVER}
    )
    dev_text, prod_text, keys = _differing(d, p)
    notes = [f"differ on: {', '.join(keys)}"] if keys else []
    if other_driver:
        notes.append(f"not the {LOGGING_DRIVER} driver: {', '.join(other_driver)}")
    if not notes:
        shown = _names(set(d.values()))
        return CheckRow(SAME, "Logging", True, shown, shown)
    return CheckRow(
        SAME,
        "Logging",
        False,
        dev_text or _names(set(d.values())),
        prod_text or _names(set(p.values())),
        "; ".join(notes),
    )


# --- What Should Be Different -------------------------------------------------------------------


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
    for svc in _services(config).values():
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
            notes.append(f"{env.name} lacks {_names(expected - found)}")
    if d & p:
        notes.append(f"shared by dev and prod: {_names(d & p)}")
    return CheckRow(
        DIFFERENT, "Data (volumes, bind mounts)", not notes, _names(d), _names(p), "; ".join(notes)
    )


def _database(config: Config) -> tuple[str, str]:
    """POSTGRES_DB, and the database in the agent's DATABASE_URL (the URL itself is secret)."""
    services = _services(config)
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
        for svc in _services(config).values()
        for key, value in _labels(svc).items()
        if key.startswith("traefik.http.routers.") and key.endswith(".rule")
        for args in _HOST.findall(value)
        for host in _BACKTICKED.findall(args)
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
        notes.append(f"both route {_names(d & p)}")
    return CheckRow(DIFFERENT, "Domain", not notes, _names(d), _names(p), "; ".join(notes))


def agent_environment_row(
    dev: Config, prod: Config, dev_env: Environment, prod_env: Environment
) -> CheckRow:
    def value(config: Config) -> str:
        agent = _services(config).get("agent")
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
        for n, s in _services(dev).items()
        if s.get("restart") not in (None, "", "no")
    }
    prod_bad = {
        n: s.get("restart") or "no"
        for n, s in _services(prod).items()
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
    dev_bad = {n: _reservation(s) for n, s in _services(dev).items() if _reservation(s)}
    prod_missing = sorted(n for n, s in _services(prod).items() if not _reservation(s))
    notes = []
    if dev_bad:
        notes.append("dev reserves nothing")
    if prod_missing:
        notes.append(f"prod reserves resources for every service; missing: {_names(prod_missing)}")
    return CheckRow(
        DIFFERENT,
        "Resource reservations",
        not notes,
        "; ".join(f"{n}: {v}" for n, v in sorted(dev_bad.items())) or "none",
        f"none for {_names(prod_missing)}" if prod_missing else "all services",
        "; ".join(notes),
    )


def traefik_row(dev: Config, prod: Config) -> CheckRow:
    in_dev, in_prod = TRAEFIK in _services(dev), TRAEFIK in _services(prod)
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
    for svc in _services(config).values():
        for key in _labels(svc):
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
        f"{env} names without the {env}- prefix: {_names(bad)}"
        for env, bad in (
            ("dev", {n for n in d if not n.startswith("dev-")}),
            ("prod", {n for n in p if not n.startswith("prod-")}),
        )
        if bad
    ]
    if d & p:
        notes.append(f"in both (one would shadow the other): {_names(d & p)}")
    return CheckRow(DIFFERENT, "Router names", not notes, _names(d), _names(p), "; ".join(notes))


def _traefik_networks(config: Config, env: Environment) -> tuple[set[str], list[str]]:
    networks = config.get("networks") or {}
    found: set[str] = set()
    bad: list[str] = []
    for name, svc in sorted(_services(config).items()):
        labels = _labels(svc)
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
    return CheckRow(DIFFERENT, "Traefik network", not detail, _names(d), _names(p), detail)


def structural_rows(
    dev: Config,
    prod: Config,
    dev_env: Environment,
    prod_env: Environment,
    domains: Mapping[str, str],
) -> list[CheckRow]:
    """Every row of the spec's "What Must Be The Same" and "What Should Be Different"."""
    return [
        services_row(dev, prod),
        ports_row(dev, prod),
        healthchecks_row(dev, prod),
        security_headers_row(dev, prod),
        logging_row(dev, prod),
        project_row(dev, prod, dev_env, prod_env),
        data_row(dev, prod, dev_env, prod_env),
        database_row(dev, prod, dev_env, prod_env),
        domain_row(dev, prod, dev_env, prod_env, domains),
        agent_environment_row(dev, prod, dev_env, prod_env),
        restart_row(dev, prod),
        reservations_row(dev, prod),
        traefik_row(dev, prod),
        router_names_row(dev, prod),
        traefik_network_row(dev, prod, dev_env, prod_env),
    ]


# --- drift --------------------------------------------------------------------------------------


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
        parts = [f"changed since deploy: {_names(changed)}"] if changed else []
        parts += [f"newer image available: {_names(new_image)}"] if new_image else []
        config[name] = "; ".join(parts) or "in sync"
        config_ok = config_ok and not parts
        gaps = [
            f"{label}: {_names(found)}"
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


# --- hygiene ------------------------------------------------------------------------------------


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
    placeholders = sorted(
        k for k, v in values.items() if dotenv.looks_secret(k) and v and example.get(k) == v
    )
    shown = ", ".join(f"{k}={dotenv.mask(k, v)}" for k, v in values.items())
    detail = shown
    if placeholders:
        detail = f"still the .env.example value: {', '.join(placeholders)}. {shown}"
    return CheckRow(HYGIENE, ".env", not placeholders, detail=detail)
