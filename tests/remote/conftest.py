"""A second Docker engine on "another host": a private dockerd in a network namespace of its
own (never on the host's network: a second dockerd there deletes docker0), reached over a veth
pair through a real OpenSSH server in that namespace (key auth, the host key pinned in the
test's known_hosts) and over tcp with TLS (certificates made by openssl). The test images are
loaded into it (`docker save | docker -H ... load`). One per module: it takes seconds to start.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from stack_tui.core import endpoints
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from support import (
    TEST_IMAGES,
    destroy,
    drive,
    kill_leftovers,
    make_certs,
    make_platform,
    result_of,
    skip_or_fail,
    ssh_shim,
)

SSHD = "/usr/sbin/sshd"


@dataclass
class RemoteEngine:
    """The engine's namespace, addresses and the client-side SSH/TLS material."""

    root: Path
    netns: str
    address: str  # the namespace's end of the veth pair
    socket: Path
    ssh_config: Path
    known_hosts: Path
    tls_client: Path
    link: str  # the host's end of the veth pair: down = the network to that host is gone
    #: What the fixture ends on exit, its dockerd first (`start_dockerd` replaces it there).
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ssh_url(self) -> str:
        return f"ssh://root@{self.address}"

    @property
    def tcp_url(self) -> str:
        return f"tcp://{self.address}:2376"

    def client(self) -> docker.DockerClient:
        """Straight to its socket: for the test's own looks, not the code under test."""
        return docker.DockerClient(base_url=f"unix://{self.socket}", timeout=60)

    def stop_dockerd(self) -> None:
        """Stop its dockerd as `systemctl stop docker` does (SIGTERM: its containers stopped,
        its socket removed); its data dir, the sshd and the network stay."""
        dockerd = self.processes[0]
        assert dockerd.poll() is None, "the remote dockerd is not running"
        dockerd.terminate()
        dockerd.wait(timeout=60)

    def start_dockerd(self) -> None:
        """Start it again, same command line and data dir; returns once it answers (it is
        then starting its containers that have a restart policy)."""
        stopped = self.processes[0]
        assert stopped.poll() is not None, "the remote dockerd is running"
        with (self.root / "dockerd.log").open("ab") as log:
            self.processes[0] = subprocess.Popen(
                stopped.args,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not answers(self.socket):  # no readiness notification to await
            assert self.processes[0].poll() is None, (self.root / "dockerd.log").read_text()
            assert time.monotonic() < deadline, "the remote dockerd did not answer in 60 s"
            time.sleep(0.05)


def run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def keygen(path: Path) -> str:
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path))
    return path.with_suffix(".pub").read_text().strip()


def answers(socket: Path) -> bool:
    try:
        docker.DockerClient(base_url=f"unix://{socket}", timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="package")
def remote_engine() -> Iterator[RemoteEngine]:
    for tool in ("dockerd", "ip", "nsenter", "openssl", "ssh"):
        if shutil.which(tool) is None:
            skip_or_fail(f"needs {tool} (scripts/test-engine installs it)")
    if os.geteuid() != 0 or not Path(SSHD).exists():
        skip_or_fail("needs root and openssh-server to run a remote engine (scripts/test)")
    with started_remote_engine() as made:
        yield made


@contextlib.contextmanager
def started_remote_engine() -> Iterator[RemoteEngine]:
    """Start it (also for bench/); everything it made is removed on exit."""
    tag = uuid.uuid4().hex[:6]
    root = Path(tempfile.mkdtemp(prefix="stt-remote-", dir="/tmp"))
    netns, host_if, ns_if = f"stt-{tag}", f"stt{tag}h", f"stt{tag}n"
    octet = int(tag[:2], 16)  # 10.251.X.0/30: a link of its own, routed to nothing else
    host_ip, address = f"10.251.{octet}.1", f"10.251.{octet}.2"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        run("ip", "netns", "add", netns)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", netns)
        run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroups dockerd needs.
        inside = ("nsenter", f"--net=/run/netns/{netns}")
        run(*inside, "ip", "addr", "add", f"{address}/30", "dev", ns_if)
        run(*inside, "ip", "link", "set", ns_if, "up")
        run(*inside, "ip", "link", "set", "lo", "up")

        tls_client, tls_server = make_certs(root / "tls", address)
        socket = root / "docker.sock"
        log = (root / "dockerd.log").open("ab")
        processes.append(
            subprocess.Popen(
                [
                    *inside,
                    "dockerd",
                    "--data-root",
                    str(root / "data"),
                    "--exec-root",
                    str(root / "exec"),
                    "--pidfile",
                    str(root / "dockerd.pid"),
                    "-H",
                    f"unix://{socket}",
                    "-H",
                    f"tcp://{address}:2376",
                    "--tlsverify",
                    "--tlscacert",
                    str(tls_server / "ca.pem"),
                    "--tlscert",
                    str(tls_server / "server-cert.pem"),
                    "--tlskey",
                    str(tls_server / "server-key.pem"),
                    "--bridge",
                    "none",
                    "--iptables=false",
                    "--ip-masq=false",
                    "--ip-forward=false",
                    "--shutdown-timeout",
                    "2",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        log.close()

        ssh_dir = root / "ssh"
        ssh_dir.mkdir(mode=0o700)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        host_public = keygen(ssh_dir / "host_key")
        (ssh_dir / "authorized_keys").write_text(keygen(ssh_dir / "client_key") + "\n")
        (ssh_dir / "sshd_config").write_text(
            f"ListenAddress {address}\nPort 22\nHostKey {ssh_dir / 'host_key'}\n"
            f"PidFile {ssh_dir / 'sshd.pid'}\nAuthorizedKeysFile {ssh_dir / 'authorized_keys'}\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nLogLevel ERROR\n"
            # The remote host's own `docker` (run by `docker system dial-stdio`) talks to its
            # engine: this namespace's dockerd, not the machine's.
            f"SetEnv DOCKER_HOST=unix://{socket}\n"
        )
        known_hosts = ssh_dir / "known_hosts"
        key_type, key = host_public.split()[:2]
        known_hosts.write_text(f"{address} {key_type} {key}\n")
        ssh_config = ssh_dir / "ssh_config"
        ssh_config.write_text(
            f"Host {address}\n  IdentityFile {ssh_dir / 'client_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
        )
        sshd = subprocess.Popen(
            [*inside, SSHD, "-D", "-e", "-f", str(ssh_dir / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(root / "sshd.log").open("ab"),
            start_new_session=True,
        )
        processes.append(sshd)

        deadline = time.monotonic() + 60
        while not answers(socket):  # dockerd offers no readiness notification to await
            assert processes[0].poll() is None, (root / "dockerd.log").read_text()
            assert time.monotonic() < deadline, "the remote dockerd did not answer in 60 s"
            time.sleep(0.05)
        for image in TEST_IMAGES.values():
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            subprocess.run(
                ["docker", "-H", f"unix://{socket}", "load", "-q"],
                stdin=save.stdout,
                check=True,
                capture_output=True,
            )
            assert save.wait() == 0, image
        yield RemoteEngine(
            root, netns, address, socket, ssh_config, known_hosts, tls_client, host_if, processes
        )
    finally:
        for proc in reversed(processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        kill_leftovers(root)
        subprocess.run(["ip", "link", "del", host_if], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
            point = mount.split()[1]
            if point.startswith(str(root)):
                subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def ssh_on_path(
    remote_engine: RemoteEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        ssh_shim(tmp_path_factory.mktemp("bin"), remote_engine.ssh_config, patch)
        patch.delenv("STACK_PROD_ENGINE", raising=False)
        patch.delenv("STACK_DEV_ENGINE", raising=False)
        yield


@pytest.fixture(scope="package")
def split(
    remote_engine: RemoteEngine, ssh_on_path: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """dev deployed on the local engine, prod on the remote one over SSH."""
    data_root = remote_engine.root / "prod-data"  # on "that host" (the same filesystem here)
    for mount in ("qdrant", "openwebui", "letsencrypt"):
        (data_root / mount).mkdir(parents=True)
    platform = make_platform(
        tmp_path_factory.mktemp("split"),
        STACK_PROD_ENGINE=remote_engine.ssh_url,
        STACK_PROD_DATA_ROOT=str(data_root),
    )
    try:
        for env in (platform.dev, platform.prod):
            done = result_of(drive(deploy(platform, env, accept_new_volumes=True)))
            assert done.ok, (env.name, done.summary, done.details)
        yield platform
    finally:
        destroy(platform)  # compose down through the same endpoints: the remote one too
        endpoints.close_tunnels()
        assert not remote_engine.client().containers.list(all=True)


def kill_dockerd(remote: RemoteEngine) -> None:
    """SIGKILL the remote engine's dockerd, as a crash or the OOM killer would (nothing
    stopped by it, its socket left behind); `remote.start_dockerd()` brings it back. The
    containerd it started dies with it (a parent-death signal); on a host whose containerd is
    a service of its own, that one would stay up, and the containers with it."""
    dockerd = remote.processes[0]
    assert dockerd.poll() is None, "the remote dockerd is not running"
    pidfile = remote.root / "exec" / "containerd" / "containerd.pid"
    watch = os.pidfd_open(int(pidfile.read_text()))
    try:
        dockerd.kill()
        dockerd.wait(timeout=60)
        select.select([watch], [], [], 60)  # readable once containerd has exited
    finally:
        os.close(watch)
    # Until init reaps it, the next dockerd would take it for alive and wait on its socket.
    pidfile.unlink()
