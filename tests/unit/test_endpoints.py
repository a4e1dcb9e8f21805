"""Which engine each environment lives on (core.endpoints): settings, Docker contexts (made by
the real docker CLI in a private DOCKER_CONFIG), refusals before anything runs, and the one
process environment Compose and the docker CLI get. The SSH and TLS engines themselves are
reached for real in tests/remote/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stack_tui.core import compose, endpoints, engine
from stack_tui.core.endpoints import Endpoint
from stack_tui.core.errors import Refused
from support import make_certs, make_platform, ssh_shim


@pytest.fixture(autouse=True)
def private_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Contexts live under DOCKER_CONFIG; never the operator's own. No engine setting leaks in."""
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    for name in ("STACK_DEV_ENGINE", "STACK_PROD_ENGINE", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    return config


def tls_dir(base: Path, *files: str) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    for name in files:
        (base / name).write_text("not checked here: the engine checks them\n")
    return base


def test_unset_is_the_local_engine_as_before(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    endpoint = endpoints.resolve(platform.prod)
    assert endpoint.host == "unix:///var/run/docker.sock"
    assert not endpoint.configured and not endpoint.remote and endpoint.machine == "local"
    assert compose.process_env(platform.prod).get("DOCKER_HOST") is None


def test_a_url_in_dotenv_points_compose_and_the_cli_at_that_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "other.sock"
    platform = make_platform(tmp_path, STACK_DEV_ENGINE=f"unix://{sock}")
    monkeypatch.setenv("DOCKER_CONTEXT", "someone-elses")
    dev = compose.process_env(platform.dev)
    assert dev["DOCKER_HOST"] == f"unix://{sock}"
    assert "DOCKER_CONTEXT" not in dev  # it would fight DOCKER_HOST in the docker CLI
    assert engine.QuickEngine.for_env(platform.dev) is not None
    assert compose.process_env(platform.prod).get("DOCKER_HOST") is None  # prod stays local


def test_the_process_environment_wins_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = make_platform(tmp_path, STACK_PROD_ENGINE="unix:///from/dotenv.sock")
    monkeypatch.setenv("STACK_PROD_ENGINE", "unix:///from/process.sock")
    assert endpoints.resolve(platform.prod).host == "unix:///from/process.sock"


def test_a_context_is_resolved_with_its_tls_material(
    tmp_path: Path, private_docker_config: Path
) -> None:
    certs, _ = make_certs(tmp_path / "certs", "10.9.9.9")
    subprocess.run(
        [
            "docker",
            "context",
            "create",
            "far",
            "--docker",
            f"host=tcp://10.9.9.9:2376,ca={certs}/ca.pem,cert={certs}/cert.pem,key={certs}/key.pem",
        ],
        check=True,
        capture_output=True,
    )
    platform = make_platform(tmp_path, STACK_PROD_ENGINE="far")
    endpoint = endpoints.resolve(platform.prod)
    assert (endpoint.host, endpoint.named_by, endpoint.machine) == (
        "tcp://10.9.9.9:2376",
        "context far",
        "10.9.9.9",
    )
    assert endpoint.tls_dir is not None
    assert str(endpoint.tls_dir).startswith(str(private_docker_config))
    environ = compose.process_env(platform.prod)
    assert environ["DOCKER_TLS_VERIFY"] == "1"
    assert sorted(p.name for p in Path(environ["DOCKER_CERT_PATH"]).iterdir()) == [
        "ca.pem",
        "cert.pem",
        "key.pem",
    ]
    assert engine.QuickEngine.for_env(platform.prod) is None  # docker-py reads that one


def test_an_unknown_context_is_refused_naming_env_and_context(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, STACK_PROD_ENGINE="nowhere")
    with pytest.raises(Refused) as caught:
        compose.process_env(platform.prod)
    assert "prod's engine" in caught.value.message and "'nowhere'" in caught.value.message
    assert "docker context ls" in caught.value.hint


def test_contexts_without_a_docker_config_are_refused_not_looked_up_in_the_cwd(
    tmp_path: Path, private_docker_config: Path
) -> None:
    (private_docker_config / "config.json").unlink()
    platform = make_platform(tmp_path, STACK_PROD_ENGINE="far")
    with pytest.raises(Refused, match=r"no Docker config\.json") as caught:
        endpoints.resolve(platform.prod)
    assert "echo '{}' > ~/.docker/config.json" in caught.value.hint


def test_plain_tcp_and_missing_tls_files_are_refused(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, STACK_PROD_ENGINE="tcp://10.9.9.9:2375")
    with pytest.raises(Refused, match="plain tcp") as caught:
        endpoints.resolve(platform.prod)
    assert "STACK_PROD_ENGINE_CERTS" in caught.value.hint
    certs = tls_dir(tmp_path / "half", "ca.pem")
    platform = make_platform(
        tmp_path, STACK_PROD_ENGINE="tcp://10.9.9.9:2376", STACK_PROD_ENGINE_CERTS=str(certs)
    )
    with pytest.raises(Refused) as caught:
        endpoints.resolve(platform.prod)
    assert "prod's engine tcp://10.9.9.9:2376" in caught.value.message
    assert "cert.pem, key.pem missing" in caught.value.message


@pytest.mark.parametrize("url", ["http://host:2375", "ssh://", "docker.example.com:2376/x"])
def test_a_malformed_address_is_refused(tmp_path: Path, url: str) -> None:
    platform = make_platform(tmp_path, STACK_DEV_ENGINE=url)
    with pytest.raises(Refused) as caught:
        endpoints.resolve(platform.dev)
    assert "STACK_DEV_ENGINE" in caught.value.message or "dev's engine" in caught.value.message


@pytest.mark.parametrize(("setting", "effective"), [("no", "false"), ("accept-new", "accept-new")])
def test_ssh_with_host_key_checking_off_is_refused_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, effective: str
) -> None:
    """`ssh -G` says what the operator's configuration would do; no connection is made (the
    address does not exist)."""
    config = tmp_path / "ssh_config"
    config.write_text(f"Host far.invalid\n  StrictHostKeyChecking {setting}\n")
    ssh_shim(tmp_path / "bin", config, monkeypatch)
    platform = make_platform(tmp_path, STACK_PROD_ENGINE="ssh://root@far.invalid")
    with pytest.raises(Refused) as caught:
        endpoints.resolve(platform.prod)
    assert "prod's engine ssh://root@far.invalid" in caught.value.message
    assert f"StrictHostKeyChecking {effective}" in caught.value.message


def test_environ_replaces_every_engine_variable() -> None:
    endpoint = Endpoint("prod", "tcp://h:2376", "STACK_PROD_ENGINE", Path("/certs"))
    environ = endpoint.environ(
        {"DOCKER_HOST": "unix:///x", "DOCKER_CONTEXT": "c", "DOCKER_CERT_PATH": "/old", "A": "1"}
    )
    assert environ == {
        "A": "1",
        "DOCKER_HOST": "tcp://h:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs",
    }
    assert endpoint.describe() == "prod's engine tcp://h:2376 (STACK_PROD_ENGINE)"


def test_check_refuses_both_environments_as_one_project_on_one_engine(tmp_path: Path) -> None:
    from dataclasses import replace

    from stack_tui.ops.check import engines_row

    platform = make_platform(tmp_path)
    assert engines_row(platform).ok  # the default: one engine, two projects
    same = replace(platform, dev_project=platform.prod_project)
    row = engines_row(same)
    assert not row.ok and "same project" in row.detail and "same engine" in row.detail
    apart = make_platform(tmp_path / "apart", STACK_DEV_ENGINE=f"unix://{tmp_path}/dev.sock")
    assert engines_row(replace(apart, dev_project=apart.prod_project)).ok
    broken = make_platform(tmp_path / "broken", STACK_PROD_ENGINE="nowhere")
    row = engines_row(broken)
    assert not row.ok and "no Docker context named 'nowhere'" in row.prod


def test_tunnel_directories_left_by_killed_processes_are_swept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A socket nobody listens on (its process was SIGKILLed) goes; a live one stays."""
    import socket
    import tempfile

    # Short, as /tmp is: a socket's path has room for 107 bytes (tmp_path may be longer).
    scratch = Path(tempfile.mkdtemp(prefix="stt-", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    try:
        home = endpoints._tunnels_home()
        dead, live = home / "engine-dead", home / "engine-live"
        for made in (dead, live):
            made.mkdir()
        with socket.socket(socket.AF_UNIX) as gone:
            gone.bind(str(dead / "docker.sock"))  # bound, never listening: refuses, as dead
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(live / "docker.sock"))
            listening.listen()
            assert endpoints._tunnels_home() == home
            assert not dead.exists() and live.exists()
    finally:
        shutil.rmtree(scratch)


def test_a_tools_words_about_our_tunnel_name_the_engine_instead() -> None:
    """Compose and the docker CLI print the socket they were given (ours, a temporary tunnel),
    also quoted inside URLs: the operator reads the engine they configured."""
    tunnel = "/tmp/stack-tui-engines-0/engine-7ovp1al3/docker.sock"
    endpoint = Endpoint("prod", f"unix://{tunnel}", "STACK_PROD_ENGINE", via="ssh://ops@db1")
    said = endpoint.plain(
        f"Cannot connect to the Docker daemon at unix://{tunnel}. Is the docker daemon running?\n"
        'error during connect: Post "http://%2Ftmp%2Fstack-tui-engines-0%2Fengine-7ovp1al3'
        '%2Fdocker.sock/v1.41/containers/create": EOF'
    )
    assert "engine-7ovp1al3" not in said and "%2F" not in said
    assert said.count("ssh://ops@db1") == 2
    local = Endpoint("prod", f"unix://{tunnel}")
    assert local.plain(f"at unix://{tunnel}") == f"at unix://{tunnel}"  # no tunnel: as said
