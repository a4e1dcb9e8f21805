"""Helpers over the configurations Compose renders, shared by the parity rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from stack_tui.core.parity.report import Config

TRAEFIK = "traefik"
TRAEFIK_TARGET_PORTS = {80, 443}
PROD_RESTART = "unless-stopped"
LOGGING_DRIVER = "json-file"
HOST_RULE = re.compile(r"Host\(([^)]*)\)")
BACKTICKED = re.compile(r"`([^`]*)`")


def services_of(config: Config) -> dict[str, Any]:
    return dict(config.get("services") or {})


def app_services_of(config: Config) -> dict[str, Any]:
    """The platform's own services: Traefik runs in prod only, by design."""
    return {name: svc for name, svc in services_of(config).items() if name != TRAEFIK}


def labels_of(service: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("labels") or {}).items()}


def listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def differing(dev: Mapping[str, str], prod: Mapping[str, str]) -> tuple[str, str, list[str]]:
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


def healthcheck_of(service: Mapping[str, Any]) -> str:
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


def logging_of(service: Mapping[str, Any]) -> str:
    log = service.get("logging") or {}
    options = " ".join(f"{k}={v}" for k, v in sorted((log.get("options") or {}).items()))
    return f"{log.get('driver', '(default)')} {options}".strip()
