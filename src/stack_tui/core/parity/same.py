"""The spec's "What Must Be The Same" table, one row function per line of it."""

from __future__ import annotations

from collections.abc import Mapping

from stack_tui.core.parity.configs import (
    LOGGING_DRIVER,
    TRAEFIK,
    TRAEFIK_TARGET_PORTS,
    app_services_of,
    differing,
    healthcheck_of,
    labels_of,
    listed,
    logging_of,
    services_of,
)
from stack_tui.core.parity.report import SAME, CheckRow, Config


def services_row(dev: Config, prod: Config) -> CheckRow:
    d, p = set(app_services_of(dev)), set(app_services_of(prod))
    notes = [
        f"only in {env}: {listed(names)}"
        for env, names in (("dev", d - p), ("prod", p - d))
        if names
    ]
    return CheckRow(
        SAME,
        "Services",
        d == p,
        listed(d),
        listed(p),
        "; ".join(notes) or "Traefik aside (prod only, by design)",
    )


def _published(config: Config, prod: bool) -> tuple[list[str], list[str]]:
    """Every host exposure as text, and those the design forbids (all but prod Traefik's)."""
    shown: list[str] = []
    forbidden: list[str] = []
    for name, svc in sorted(services_of(config).items()):
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
    traefik = services_of(prod).get(TRAEFIK) or {}
    targets = {port.get("target") for port in traefik.get("ports") or []}
    notes = [f"not allowed: {', '.join(dev_bad + prod_bad)}"] if dev_bad or prod_bad else []
    if traefik and targets != TRAEFIK_TARGET_PORTS:
        notes.append(
            f"prod Traefik must publish container ports 80 and 443, publishes "
            f"{listed(str(t) for t in targets)}"
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
    return sorted(set(app_services_of(dev)) & set(app_services_of(prod)))


def healthchecks_row(dev: Config, prod: Config) -> CheckRow:
    names = _common(dev, prod)
    d = {n: healthcheck_of(services_of(dev)[n]) for n in names}
    p = {n: healthcheck_of(services_of(prod)[n]) for n in names}
    dev_text, prod_text, keys = differing(d, p)
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
    for name, svc in sorted(services_of(config).items()):
        labels = labels_of(svc)
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
    dev_text, prod_text, keys = differing(d, p)
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
    d = {n: logging_of(services_of(dev)[n]) for n in names}
    p = {n: logging_of(services_of(prod)[n]) for n in names}
    everyone = [*services_of(dev).items(), *services_of(prod).items()]
    other_driver = sorted(
        {n for n, svc in everyone if (svc.get("logging") or {}).get("driver") != LOGGING_DRIVER}
    )
    dev_text, prod_text, keys = differing(d, p)
    notes = [f"differ on: {', '.join(keys)}"] if keys else []
    if other_driver:
        notes.append(f"not the {LOGGING_DRIVER} driver: {', '.join(other_driver)}")
    if not notes:
        shown = listed(set(d.values()))
        return CheckRow(SAME, "Logging", True, shown, shown)
    return CheckRow(
        SAME,
        "Logging",
        False,
        dev_text or listed(set(d.values())),
        prod_text or listed(set(p.values())),
        "; ".join(notes),
    )
