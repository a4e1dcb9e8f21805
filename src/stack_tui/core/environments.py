"""The two environments as data.

The project names are constants because Compose derives volume names from
them: a different name means new, empty volumes and "lost" data. Tests build
their own Platform with other names and another data directory; only the
defaults below are the platform's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from stack_tui.core.errors import Refused

DEV_PROJECT_NAME = "ai-agent-platform-dev"
PROD_PROJECT_NAME = "ai-agent-platform-prod"

ENV_NAMES = ("dev", "prod")


def find_root() -> Path:
    """The platform checkout: $STACK_ROOT, else the nearest parent of the cwd holding
    compose/docker-compose.yml, else the checkout this package was installed from."""
    explicit = os.environ.get("STACK_ROOT")
    if explicit:
        return Path(explicit).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "compose" / "docker-compose.yml").is_file():
            return candidate
    return Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Environment:
    """One Compose project of the platform and what it owns."""

    name: str
    project: str
    compose_files: tuple[Path, ...]
    project_dir: Path
    data_dir: Path
    env_file: Path
    postgres_volume_key: str
    db_name: str
    bind_mounts: tuple[str, ...]
    domain_var: str
    agent_environment: str
    runs_traefik: bool
    #: Variables given to Compose on top of the process environment (data dir, network names).
    variables: tuple[tuple[str, str], ...] = ()

    @property
    def postgres_volume(self) -> str:
        """The full volume name Compose gives the Postgres volume: `{project}_{key}`."""
        return f"{self.project}_{self.postgres_volume_key}"

    @property
    def expected_volumes(self) -> tuple[str, ...]:
        return (self.postgres_volume,)

    @property
    def network(self) -> str:
        return f"{self.project}_platform"

    @property
    def backups_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"

    def bind_mount_paths(self) -> tuple[Path, ...]:
        return tuple(self.data_dir / mount for mount in self.bind_mounts)


def label(env: Environment | str) -> str:
    """How an environment is named on screen: prod always in capitals."""
    name = env if isinstance(env, str) else env.name
    return "PROD" if name == "prod" else name


@dataclass(frozen=True)
class Platform:
    """Both environments, rooted at one checkout and one data directory."""

    root: Path = field(default_factory=find_root)
    dev_project: str = DEV_PROJECT_NAME
    prod_project: str = PROD_PROJECT_NAME
    data_dir: Path | None = None
    env_file: Path | None = None
    compose_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.data_dir or self.root / "data"

    @property
    def dotenv(self) -> Path:
        return self.env_file or self.root / ".env"

    @property
    def compose(self) -> Path:
        return self.compose_dir or self.root / "compose"

    @property
    def audit_log(self) -> Path:
        return self.data / "audit.log"

    @property
    def backups_dir(self) -> Path:
        return self.data / "backups"

    @property
    def logs_dir(self) -> Path:
        return self.data / "logs"

    @property
    def locks_dir(self) -> Path:
        return self.data / "locks"

    def compose_variables(self) -> tuple[tuple[str, str], ...]:
        """What the compose files interpolate besides `.env`: paths and network names."""
        defaults = {
            "STACK_DATA_DIR": str(self.data),
            "STACK_DEV_NETWORK": f"{self.dev_project}_platform",
            "STACK_PROD_NETWORK": f"{self.prod_project}_platform",
        }
        return tuple({**defaults, **self.extra_env}.items())

    def env(self, name: str) -> Environment:
        """The environment called `name` ("dev" or "prod")."""
        variables = self.compose_variables()
        base = self.compose / "docker-compose.yml"
        if name == "dev":
            return Environment(
                name="dev",
                project=self.dev_project,
                compose_files=(base, self.compose / "docker-compose.dev.yml"),
                project_dir=self.root,
                data_dir=self.data,
                env_file=self.dotenv,
                postgres_volume_key="postgres_data_dev",
                db_name="agent_db_dev",
                bind_mounts=("qdrant_dev", "openwebui_dev"),
                domain_var="DOMAIN_DEV",
                agent_environment="development",
                runs_traefik=False,
                variables=variables,
            )
        if name == "prod":
            return Environment(
                name="prod",
                project=self.prod_project,
                compose_files=(base, self.compose / "docker-compose.prod.yml"),
                project_dir=self.root,
                data_dir=self.data,
                env_file=self.dotenv,
                postgres_volume_key="postgres_data",
                db_name="agent_db",
                bind_mounts=("qdrant", "openwebui", "letsencrypt"),
                domain_var="DOMAIN",
                agent_environment="production",
                runs_traefik=True,
                variables=variables,
            )
        raise Refused(
            f"Unknown environment {name!r}.",
            "Use 'dev' or 'prod' (prod is the default: ./stack deploy, ./stack dev deploy).",
        )

    @property
    def dev(self) -> Environment:
        return self.env("dev")

    @property
    def prod(self) -> Environment:
        return self.env("prod")

    def other(self, env: Environment) -> Environment:
        return self.prod if env.name == "dev" else self.dev
