"""Pure comparisons behind `./stack check`: parity, drift and hygiene rows.

Everything here works on plain data (the configs Compose renders, container
facts, volume listings) so each rule can be unit-tested by feeding dicts; the
gathering from Compose and the engine lives in ops/check.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from stack_tui.core.environments import Environment
from stack_tui.core.parity.different import (
    agent_environment_row,
    data_row,
    database_row,
    domain_row,
    project_row,
    reservations_row,
    restart_row,
    router_names_row,
    traefik_network_row,
    traefik_row,
)
from stack_tui.core.parity.drift import Deployed, EnvState, drift_rows, images_row
from stack_tui.core.parity.hygiene import (
    Orphan,
    TraefikAttachment,
    dotenv_row,
    forbidden_row,
    orphan_volumes,
    orphans_row,
    traefik_attachment_row,
)
from stack_tui.core.parity.report import (
    DIFFERENT,
    DRIFT,
    HYGIENE,
    SAME,
    SECTIONS,
    CheckReport,
    CheckRow,
    Config,
    error_row,
)
from stack_tui.core.parity.same import (
    healthchecks_row,
    logging_row,
    ports_row,
    security_headers_row,
    services_row,
)

__all__ = [
    "DIFFERENT",
    "DRIFT",
    "HYGIENE",
    "SAME",
    "SECTIONS",
    "CheckReport",
    "CheckRow",
    "Config",
    "Deployed",
    "EnvState",
    "Orphan",
    "TraefikAttachment",
    "dotenv_row",
    "drift_rows",
    "error_row",
    "forbidden_row",
    "images_row",
    "orphan_volumes",
    "orphans_row",
    "structural_rows",
    "traefik_attachment_row",
]


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
