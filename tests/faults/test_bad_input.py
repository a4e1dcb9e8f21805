"""Bad values for every CLI input that takes one: a clear message, nothing run, nothing lost."""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import docker
import pytest

from faults.common import (
    all_checksums,
    cli_code,
    fake_backup,
    secret_leaks,
    spawn,
)
from stack_tui import cli
from stack_tui.core import audit, engine
from stack_tui.core.environments import Platform
from support import REPO, TEST_SECRETS, psql

pytestmark = pytest.mark.engine

NOTES = "SELECT id, body FROM notes ORDER BY id"
MB = 1 << 20


@dataclasses.dataclass
class World:
    """What must not change when bad input is refused."""

    notes: str
    backups: dict[str, str]
    containers: dict[str, str]
    prod_containers: int
    audit_lines: int


def look(platform: Platform) -> World:
    client = docker.from_env()
    containers = {
        c.name: c.attrs["State"]["StartedAt"]
        for c in engine.project_containers(client, platform.dev_project)
    }
    return World(
        psql(platform, "dev", NOTES),
        all_checksums(platform.backups_dir),
        containers,
        len(engine.project_containers(client, platform.prod_project)),
        len(audit.read(platform.audit_log)),
    )


@pytest.fixture
def world(big: Platform) -> Iterator[tuple[Platform, World]]:
    fake_backup(big.backups_dir, "dev", datetime(2024, 1, 1))
    fake_backup(big.backups_dir, "prod", datetime(2024, 1, 1))
    yield big, look(big)


def unchanged(platform: Platform, before: World, *, audited: int = 0) -> None:
    after = look(platform)
    assert after.notes == before.notes, "rows changed"
    assert after.backups == before.backups, "data/backups changed (a safety backup was taken?)"
    assert after.containers == before.containers, "dev's containers were touched"
    assert after.prod_containers == before.prod_containers, "prod was deployed"
    assert after.audit_lines == before.audit_lines + audited
    if audited:
        assert all(e["result"] != "ok" for e in audit.read(platform.audit_log)[-audited:])


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """No wrapping of long paths in captured output (rich wraps at 80 columns without a tty)."""
    for console in (cli.out, cli.err):
        monkeypatch.setattr(console, "width", 1000)


def stack(platform: Platform, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv), platform=platform)
    output = capsys.readouterr()
    text = output.out + output.err
    assert "Traceback" not in text
    assert secret_leaks({"output": text}) == []
    return code, text


# --- environment names and options --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["prdo", "deploy"], "Unknown command or environment 'prdo'"),
        (["staging", "backup"], "Unknown command or environment 'staging'"),
        (["DEV", "deploy"], "Unknown command or environment 'DEV'"),
        (["dev;", "deploy"], "Unknown command or environment 'dev;'"),
        (["deploy", "--env", "dev"], "unrecognized arguments: --env"),
        (["dev", "deploy", "--prod"], "Conflicting environments"),
        (["backup", "--dev", "--prod"], "not allowed with argument"),
        (["dev", "backup", "--keep", "0"], "Keeping 0 backups would delete them all"),
        (["dev", "backup", "--keep", "-3"], "Keeping -3 backups would delete them all"),
        (["dev", "backup", "--keep", "five"], "invalid int value: 'five'"),
        (["dev", "deploy", "--wait-timeout", "soon"], "'soon' is not a positive whole number"),
        (["dev", "backup", "restore"], "the following arguments are required: file"),
        (["dev", "backup", "restroe", "x"], "invalid choice: 'restroe'"),
    ],
)
def test_bad_names_and_options_run_nothing(
    world: tuple[Platform, World], capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    platform, before = world
    code, text = stack(platform, capsys, *argv)
    assert code in (cli.EXIT_USAGE, cli.EXIT_REFUSED), text
    assert said in " ".join(text.split()), text
    unchanged(platform, before, audited=1 if code == cli.EXIT_REFUSED else 0)


def test_a_negative_wait_timeout_is_a_usage_error_and_deploys_nothing(
    platform: Platform,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fresh platform: if the value is not refused, the deploy it starts is cleaned up."""
    client = docker.from_env()
    for value in ("-1", "-30"):
        code, text = stack(platform, capsys, "dev", "deploy", "--wait-timeout", value, "--yes")
        assert code == cli.EXIT_USAGE, text
        assert "wait-timeout" in text, text
        assert engine.project_containers(client, platform.dev_project) == []


def test_bad_keep_in_the_environment_is_refused(
    world: tuple[Platform, World],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform, before = world
    for value in ("abc", "0", "-1", "5; rm -rf /"):
        monkeypatch.setenv("STACK_BACKUP_KEEP", value)
        code, text = stack(platform, capsys, "dev", "backup")
        assert code == cli.EXIT_REFUSED, text
        assert "STACK_BACKUP_KEEP" in text and "not a positive whole number" in text
    unchanged(platform, before)


# --- files given to restore ---------------------------------------------------------------------

Maker = Callable[[Path, Path], str]


def _copy_of_good(backups_dir: Path, dest: Path) -> Path:
    source = sorted(p for p in backups_dir.iterdir() if p.name.startswith("dev_"))[0]
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest


def dotdot_outside(backups: Path, elsewhere: Path) -> str:
    _copy_of_good(backups, backups.parent / "dev_20240102_000000.sql.gz")
    return f"{backups}/../dev_20240102_000000.sql.gz"


def dotdot_to_etc(backups: Path, elsewhere: Path) -> str:
    return f"{backups}/../../../../../../../../etc/passwd"


def shell_metacharacters(backups: Path, elsewhere: Path) -> str:
    # `/` cannot be part of a name: this is a directory "x; touch " holding tmp/pwned.sql.gz.
    _copy_of_good(backups, backups / "x; touch " / "tmp" / "pwned.sql.gz")
    return f"{backups}/x; touch /tmp/pwned.sql.gz"


def command_substitution(backups: Path, elsewhere: Path) -> str:
    path = _copy_of_good(backups, backups / "dev_$(touch pwned-here)`touch pwned-too`.sql.gz")
    return str(path)


def spaces(backups: Path, elsewhere: Path) -> str:
    return str(_copy_of_good(backups, backups / "dev 20240101 000000.sql.gz"))


def trailing_newline(backups: Path, elsewhere: Path) -> str:
    return str(_copy_of_good(backups, backups / "dev_20240105_000000.sql.gz\n"))


def symlink_outside(backups: Path, elsewhere: Path) -> str:
    target = _copy_of_good(backups, elsewhere / "dev_20240106_000000.sql.gz")
    (backups / "dev_20240106_000000.sql.gz").symlink_to(target)
    return str(backups / "dev_20240106_000000.sql.gz")


def symlink_to_etc(backups: Path, elsewhere: Path) -> str:
    (backups / "dev_20240107_000000.sql.gz").symlink_to("/etc/shadow")
    return str(backups / "dev_20240107_000000.sql.gz")


def symlink_dangling(backups: Path, elsewhere: Path) -> str:
    (backups / "dev_20240108_000000.sql.gz").symlink_to(elsewhere / "gone.sql.gz")
    return str(backups / "dev_20240108_000000.sql.gz")


def zero_bytes(backups: Path, elsewhere: Path) -> str:
    (backups / "dev_20240109_000000.sql.gz").touch(mode=0o600)
    return str(backups / "dev_20240109_000000.sql.gz")


def huge_random(backups: Path, elsewhere: Path) -> str:
    path = backups / "dev_20240110_000000.sql.gz"
    with path.open("wb") as out:
        for _ in range(50):
            out.write(os.urandom(MB))
    return str(path)


def huge_sparse(backups: Path, elsewhere: Path) -> str:
    path = backups / "dev_20240111_000000.sql.gz"
    with path.open("wb") as out:
        out.truncate(50 * MB)
    return str(path)


def gzip_without_trailer(backups: Path, elsewhere: Path) -> str:
    path = backups / "dev_20240112_000000.sql.gz"
    path.write_bytes(gzip.compress(b"-- PostgreSQL database dump\n" + b"\0" * (64 * MB), 1))
    return str(path)


def truncated_gzip(backups: Path, elsewhere: Path) -> str:
    whole = gzip.compress(
        b"-- PostgreSQL database dump\n"
        + os.urandom(MB).hex().encode()
        + b"\n-- PostgreSQL database dump complete\n",
        1,
    )
    path = backups / "dev_20240113_000000.sql.gz"
    path.write_bytes(whole[: len(whole) // 2])
    return str(path)


def a_directory(backups: Path, elsewhere: Path) -> str:
    (backups / "dev_20240114_000000.sql.gz").mkdir()
    return str(backups / "dev_20240114_000000.sql.gz")


def a_fifo(backups: Path, elsewhere: Path) -> str:
    os.mkfifo(backups / "dev_20240115_000000.sql.gz")  # opening it would block forever
    return str(backups / "dev_20240115_000000.sql.gz")


def missing(backups: Path, elsewhere: Path) -> str:
    return str(backups / "dev_20240116_000000.sql.gz")


def other_environment(backups: Path, elsewhere: Path) -> str:
    return str(sorted(p for p in backups.iterdir() if p.name.startswith("prod_"))[0])


def bad_timestamp(backups: Path, elsewhere: Path) -> str:
    return str(_copy_of_good(backups, backups / "dev_20241341_256199.sql.gz"))


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (dotdot_outside, "outside"),
        (dotdot_to_etc, "outside"),
        (shell_metacharacters, "outside"),
        (command_substitution, "not a backup's name"),
        (spaces, "not a backup's name"),
        (trailing_newline, "not a backup's name"),
        (symlink_outside, "is a symbolic link to"),
        (symlink_to_etc, "is a symbolic link to /etc/shadow"),
        (symlink_dangling, "symbolic link to a file that does not exist"),
        (zero_bytes, "is empty (0 bytes)"),
        (huge_random, "not a gzip file"),
        (huge_sparse, "not a gzip file"),
        (gzip_without_trailer, "the dump is incomplete"),
        (truncated_gzip, "truncated"),
        (a_directory, "is not a regular file"),
        (a_fifo, "is not a regular file"),
        (missing, "No such file"),
        (other_environment, "refusing to restore it into dev"),
        (bad_timestamp, "not a backup's name"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_bad_restore_files_are_refused_before_anything_runs(
    world: tuple[Platform, World],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Maker,
    said: str,
) -> None:
    platform, _ = world
    monkeypatch.chdir(tmp_path)  # where `$(touch pwned-here)` would land
    arg = make(platform.backups_dir, tmp_path / "elsewhere")
    before = look(platform)
    started = time.monotonic()
    code, text = stack(platform, capsys, "dev", "backup", "restore", arg, "--yes")
    took = time.monotonic() - started
    assert code == cli.EXIT_REFUSED, text
    assert said in text, text
    assert took < 10, f"refusing took {took:.1f} s"
    unchanged(platform, before, audited=1)
    assert not list(tmp_path.glob("pwned*")) and not list(Path("/tmp").glob("pwned*"))


def test_shell_metacharacters_outside_with_allow_outside_are_still_only_a_name(
    world: tuple[Platform, World],
    capsys: pytest.CaptureFixture[str],
) -> None:
    platform, before = world
    arg = shell_metacharacters(platform.backups_dir, platform.data)
    before = look(platform)
    code, text = stack(
        platform, capsys, "dev", "backup", "restore", arg, "--allow-outside", "--yes"
    )
    assert code == cli.EXIT_REFUSED and "pwned.sql.gz is not a backup's name" in text, text
    unchanged(platform, before, audited=1)
    assert not list(Path("/tmp").glob("pwned*"))


def test_non_utf8_file_names_are_refused_clearly(world: tuple[Platform, World]) -> None:
    """Real argv bytes (not str): the name cannot be decoded; nothing may crash."""
    platform, _ = world
    backups_dir = os.fsencode(platform.backups_dir)
    bad = os.path.join(backups_dir, b"dev_2024\xff\xfe_000000.sql.gz")
    with open(bad, "wb") as out:
        out.write(b"\x1f\x8b not really")
    before = look(platform)
    code = cli_code(platform, [], before="").replace("cli.main([]", "cli.main(sys.argv[1:]")
    for argv in (
        [b"dev", b"backup", b"restore", bad, b"--yes"],
        [b"dev", b"backup", b"restore", bad + b"-missing", b"--yes"],
        [b"backup", b"list", b"--verify"],
        [b"dev\xff", b"backup"],
    ):
        proc = spawn(code, *argv)
        out, err = proc.communicate(timeout=60)
        text = out.decode(errors="replace") + err.decode(errors="replace")
        assert "Traceback" not in text, text
        if b"restore" in argv:
            assert proc.returncode == cli.EXIT_REFUSED, text
            assert "not a backup's name" in text or "No such file" in text, text
        elif b"list" in argv:
            assert proc.returncode == cli.EXIT_OK, text
        else:
            assert proc.returncode == cli.EXIT_USAGE, text
    unchanged(platform, before, audited=2)


# --- .env and compose files -------------------------------------------------------------------


def _env_lines() -> list[str]:
    from support import write_env_file

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"stt-env-{os.getpid()}"
    try:
        return write_env_file(path).read_text().splitlines()
    finally:
        path.unlink(missing_ok=True)


ENV_ERRORS = {
    "missing equals": lambda lines: [*lines, "LOG_LEVEL debug"],
    "yaml style": lambda lines: [*lines, "EXTRA_KEY: value"],
    "secret without key": lambda lines: [*lines, TEST_SECRETS["OPENAI_API_KEY"]],
    "secret with a space": lambda lines: [
        line.replace("QDRANT_API_KEY=", "QDRANT_API_KEY ") for line in lines
    ],
    "unterminated quote": lambda lines: [
        line.replace("POSTGRES_PASSWORD=", 'POSTGRES_PASSWORD="') for line in lines
    ],
    "bad key": lambda lines: [*lines, "1BAD-KEY=x"],
}


@pytest.mark.parametrize("error", sorted(ENV_ERRORS))
def test_env_file_syntax_errors_are_clear_and_never_echo_secrets(
    world: tuple[Platform, World],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    error: str,
) -> None:
    platform, before = world
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(ENV_ERRORS[error](_env_lines())) + "\n")
    broken = dataclasses.replace(platform, env_file=env_file)
    for argv in (
        ["dev", "deploy", "--yes"],
        ["status", "--dev"],
        ["deploy", "--yes", "--confirm", "prod"],
        ["dev", "backup"],
    ):
        code, text = stack(broken, capsys, *argv)  # asserts no secret in the output
        if argv == ["dev", "backup"] and code == cli.EXIT_OK:
            continue  # a backup needs nothing from .env; if it refuses, it must say why
        assert code in (cli.EXIT_REFUSED, cli.EXIT_FAILED), (argv, text)
        assert str(env_file) in text and "line" in text, (argv, text)
    after = look(platform)
    assert (after.notes, after.containers, after.prod_containers) == (
        before.notes,
        before.containers,
        before.prod_containers,
    )
    assert all(
        e["result"] != "ok" for e in audit.read(platform.audit_log) if e["operation"] == "deploy"
    )
    assert secret_leaks({p.name: p.read_text() for p in platform.logs_dir.glob("*.jsonl")}) == []
    assert secret_leaks({"audit": platform.audit_log.read_text()}) == []


@pytest.mark.parametrize("yaml_error", ["  agent: [unclosed\n", "\tagent:\n", "services: {{\n"])
def test_compose_yaml_errors_are_clear_and_run_nothing(
    world: tuple[Platform, World],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    yaml_error: str,
) -> None:
    platform, before = world
    compose_dir = tmp_path / "compose"
    shutil.copytree(REPO / "compose", compose_dir)
    overlay = compose_dir / "docker-compose.dev.yml"
    overlay.write_text(
        overlay.read_text().replace("services:\n", "services:\n" + yaml_error, 1)
        if not yaml_error.startswith("services")
        else yaml_error
    )
    broken = dataclasses.replace(platform, compose_dir=compose_dir)
    code, text = stack(broken, capsys, "dev", "deploy", "--yes")
    assert code == cli.EXIT_FAILED, text
    assert "docker compose config failed for dev" in text and "yaml" in text.lower(), text
    code, text = stack(broken, capsys, "status", "--dev")
    assert code == cli.EXIT_FAILED and "yaml" in text.lower(), text
    unchanged(platform, before, audited=1)
