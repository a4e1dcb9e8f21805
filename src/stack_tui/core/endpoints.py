"""Which Docker engine each environment lives on: the one answer docker-py, Compose and the
docker CLI all use, so API calls and Compose never talk to two different engines.

An environment's engine is `STACK_DEV_ENGINE` / `STACK_PROD_ENGINE` (process environment
over `.env`): a Docker context name (resolved through docker-py's context API, since
`docker.from_env()` ignores contexts) or an engine URL (`unix://`, `ssh://user@host[:port]`,
`tcp://host:2376` with `STACK_{ENV}_ENGINE_CERTS` naming a directory holding ca.pem,
cert.pem and key.pem). Unset: the local engine, as before (DOCKER_HOST or the default
socket). Everything is checked before anything runs: a bad engine changes nothing.

ssh:// goes through the operator's OpenSSH client and known_hosts, as one tunnel per process
(`Tunnel`) that every client then uses as a local socket. A host key is never accepted by us:
every connection is made with BatchMode, so an unknown or changed key is refused with what to
do, and a configuration that turns host key checking off is refused outright.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from stack_tui.core import dotenv
from stack_tui.core.environments import Environment
from stack_tui.core.errors import EngineUnreachable, Refused, StackError
from stack_tui.core.prepared import Prepared

DEFAULT_HOST = "unix:///var/run/docker.sock"
#: What the docker CLI and Compose read to pick an engine; replaced as a whole for a set one.
ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
#: ssh -G's values of StrictHostKeyChecking that would take a host key without asking.
UNCHECKED_HOST_KEYS = ("false", "no", "off", "accept-new")
SSH_CONNECT_TIMEOUT = 10
#: Seconds an engine's connection may stay silent (packets dropped: the network to its host
#: gone, nothing refuses) before it is given up: ssh's keepalives over a tunnel, TCP's over
#: tcp://. Without it a stream from the engine (a dump, logs, events) would wait forever.
DEAD_AFTER = 30
#: Keepalive probes sent before the connection is given up (one every DEAD_AFTER / this).
KEEPALIVE_PROBES = 3


@dataclass(frozen=True)
class Endpoint:
    """One environment's engine: its address, how it was named, its TLS material."""

    env: str
    host: str
    #: How the operator named it: "local", "context NAME" or the setting's name.
    named_by: str = "local"
    #: Directory with ca.pem, cert.pem, key.pem (tcp:// with TLS), else None.
    tls_dir: Path | None = None
    #: For ssh://: the address as configured; `host` is then this process's tunnel to it.
    via: str = ""
    #: The env's data directory on the engine's host (STACK_{ENV}_DATA_ROOT): what Compose
    #: renders bind-mount paths against, since it resolves them on this machine otherwise.
    data_root: str = ""

    @property
    def scheme(self) -> str:
        return self.host.split("://", 1)[0]

    @property
    def remote(self) -> bool:
        """On another machine (or at least not behind a local socket)."""
        return self.scheme != "unix" or bool(self.via)

    @property
    def configured(self) -> bool:
        return self.named_by != "local"

    @property
    def machine(self) -> str:
        """The engine's host as a person names it: `host` of ssh://user@host:22, else "local"."""
        if not self.remote:
            return "local"
        return urlsplit(self.via or self.host).hostname or self.host

    @property
    def socket_path(self) -> str | None:
        return self.host.removeprefix("unix://") if self.scheme == "unix" else None

    def describe(self) -> str:
        """`prod's engine ssh://root@db1 (context db1)`: for messages."""
        address = self.via or self.host
        named = "" if self.named_by in ("local", address) else f" ({self.named_by})"
        return f"{self.env}'s engine {address}{named}"

    def plain(self, text: str) -> str:
        """`text` (Compose's, the docker CLI's) with this process's tunnel socket named as the
        engine the operator configured: a temporary socket path means nothing to them."""
        if not self.via:
            return text
        tunnel = self.host.removeprefix("unix://")
        for said in (self.host, quote(tunnel, safe=""), tunnel):  # Go's URLs quote the path
            text = text.replace(said, self.via)
        return text

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The process environment for the docker CLI and Compose: `base` (ours) with the
        engine variables replaced by this endpoint's; the local engine leaves them as they are."""
        environ = dict(os.environ if base is None else base)
        if not self.configured:
            return environ
        for name in ENGINE_VARIABLES:
            environ.pop(name, None)
        environ["DOCKER_HOST"] = self.host
        if self.data_root:
            environ["STACK_DATA_DIR"] = self.data_root
        if self.tls_dir is not None:
            environ["DOCKER_TLS_VERIFY"] = "1"
            environ["DOCKER_CERT_PATH"] = str(self.tls_dir)
        return environ


def setting_name(env_name: str) -> str:
    return f"STACK_{env_name.upper()}_ENGINE"


def setting(env: Environment) -> str:
    """The env's engine as configured ("" for the local one), unresolved: envs with the same
    setting share an engine (the TUI watches each engine once)."""
    return _settings(env).get(setting_name(env.name), "").strip()


def resolve(target: Environment | Prepared, settings: Mapping[str, str] | None = None) -> Endpoint:
    """The environment's engine, checked (context exists, URL well formed, TLS files there,
    SSH host key checking on); raises Refused naming the environment and the engine. Given
    an operation's Prepared, its settings are used: `.env` is read once per operation."""
    if isinstance(target, Prepared):
        env, settings = target.env, target.settings
    else:
        env = target
    values = settings if settings is not None else _settings(env)
    name = setting_name(env.name)
    wanted = values.get(name, "").strip()
    if not wanted:
        return Endpoint(env.name, os.environ.get("DOCKER_HOST") or DEFAULT_HOST)
    data_root = values.get(f"STACK_{env.name.upper()}_DATA_ROOT", "").strip()
    if "://" in wanted:
        certs = values.get(f"{name}_CERTS", "").strip()
        found = _from_url(env.name, wanted, name, Path(certs) if certs else None)
    else:
        found = _from_context(env.name, wanted)
    return _checked(dataclasses.replace(found, data_root=data_root))


def _settings(env: Environment) -> Mapping[str, str]:
    """`.env` with the process environment over it (as Prepared.settings reads them)."""
    values: dict[str, str] = {}
    if env.env_file.exists():
        stat = env.env_file.stat()
        values = dict(_parsed(env.env_file, stat.st_mtime_ns, stat.st_size))
    return {**values, **os.environ}


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """`.env` parsed once per version of the file: every Compose call resolves the engine."""
    return tuple(dotenv.parse(path).items())


def _from_url(env: str, url: str, named_by: str, certs: Path | None) -> Endpoint:
    scheme = url.split("://", 1)[0]
    parts = urlsplit(url)
    if scheme not in ("unix", "ssh", "tcp") or (scheme != "unix" and not parts.hostname):
        raise Refused(
            f"{named_by}={url} is not an engine address {env} can use.",
            "Use a Docker context name, unix:///path/docker.sock, ssh://user@host[:port] or "
            f"tcp://host:2376 with {named_by}_CERTS naming the TLS directory.",
        )
    if scheme == "tcp" and certs is None:
        raise Refused(
            f"{env}'s engine {url} is plain tcp: anyone on that network could run containers "
            "as root on it.",
            f"Set {named_by}_CERTS to a directory holding ca.pem, cert.pem and key.pem "
            "(the engine started with --tlsverify), or reach it over ssh://.",
        )
    return Endpoint(env, url, named_by, certs if scheme == "tcp" else None)


def _from_context(env: str, name: str) -> Endpoint:
    from docker.context import ContextAPI
    from docker.errors import ContextException
    from docker.utils.config import find_config_file

    if find_config_file() is None:  # docker-py then looks for contexts under the cwd
        raise Refused(
            f"{env}'s engine: Docker context {name!r} cannot be read: there is no Docker "
            "config.json, next to which docker-py looks for contexts.",
            "Create it: echo '{}' > ~/.docker/config.json (or in $DOCKER_CONFIG).",
        )
    try:
        context = ContextAPI.get_context(name)
    except ContextException as err:
        raise Refused(f"{env}'s engine: Docker context {name!r} is unreadable: {err}.") from None
    if context is None:
        raise Refused(
            f"{env}'s engine: there is no Docker context named {name!r}.",
            "List them with 'docker context ls'; create it with 'docker context create "
            f"{name} --docker host=ssh://user@host', or set {setting_name(env)} to a URL.",
        )
    host = str(context.Host or DEFAULT_HOST)
    tls = context.TLSConfig
    tls_dir = None
    if tls is not None and tls.cert:
        tls_dir = Path(tls.cert[0]).parent
    elif host.startswith("tcp://") and not context.endpoints["docker"].get("SkipTLSVerify"):
        tls_dir = Path(context.tls_path) / "docker"  # checked below: said plainly if missing
    named = f"context {name}"
    if host.startswith("tcp://") and tls_dir is None:
        raise Refused(
            f"{env}'s engine {host} ({named}) is plain tcp without TLS.",
            "Recreate the context with ca=, cert= and key= (docker context create ... "
            "--docker host=tcp://...,ca=...,cert=...,key=...), or use ssh://.",
        )
    return Endpoint(env, host, named, tls_dir)


def _checked(endpoint: Endpoint) -> Endpoint:
    if endpoint.tls_dir is not None:
        missing = [f for f in TLS_FILES if not (endpoint.tls_dir / f).is_file()]
        if missing:
            raise Refused(
                f"{endpoint.describe()}: TLS file(s) {', '.join(missing)} missing in "
                f"{endpoint.tls_dir}.",
                "Put the engine's CA and this machine's client certificate and key there "
                "(ca.pem, cert.pem, key.pem), as 'docker --tlsverify' expects them.",
            )
    if endpoint.scheme == "ssh":
        return tunnel(endpoint)
    return endpoint


def ssh_command(endpoint: Endpoint, *options: str) -> list[str]:
    """`ssh [-l user] [-p port] OPTIONS -- host`: the operator's own OpenSSH client."""
    parts = urlsplit(endpoint.via or endpoint.host)
    ssh = shutil.which("ssh")
    if ssh is None:
        raise Refused(
            f"{endpoint.describe()} is reached over SSH, but there is no ssh client here.",
            "Install it (apt-get install openssh-client).",
        )
    line = [ssh]
    if parts.username:
        line += ["-l", parts.username]
    if parts.port:
        line += ["-p", str(parts.port)]
    return [*line, *options, "--", str(parts.hostname)]


def batch() -> tuple[str, ...]:
    """Never a prompt (the TUI owns the terminal), never a new host key accepted, and a
    bounded wait for a host whose network is gone."""
    return ("-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT}")


#: Asked of the remote host once: its engine answers, and where its socket is.
REMOTE_PROBE = (
    "docker version --format '{{.Server.Version}}' >/dev/null && "
    'echo "${DOCKER_HOST:-unix:///var/run/docker.sock}"'
)


@dataclass
class Tunnel:
    """This process's SSH connection to one engine host: the host's engine socket forwarded
    to a private local socket. One SSH handshake for everything (docker-py's ssh:// transport
    makes one per request, about a second each), and docker-py, Compose, `docker exec` and
    the TUI's QuickEngine all talk to that one local socket: the same engine by construction.

    The remote side runs `cat` on our pipe: if this process dies (even SIGKILL), the pipe
    closes, the session ends and ssh exits, so no tunnel outlives its process."""

    proc: subprocess.Popen[bytes]
    directory: Path

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


_tunnels: dict[str, Tunnel] = {}
_tunnels_lock = threading.Lock()


def tunnel(endpoint: Endpoint) -> Endpoint:
    """The endpoint as reached through this process's tunnel (started on first use, again if
    it died): unix:// to the local end, `via` the ssh:// address."""
    with _tunnels_lock:
        found = _tunnels.get(endpoint.host)
        if found is None or not found.alive():
            if found is not None:
                found.close()
            found = _tunnels[endpoint.host] = _open_tunnel(endpoint)
    return dataclasses.replace(endpoint, host=f"unix://{found.socket}", via=endpoint.host)


def close_tunnels() -> None:
    """End every tunnel of this process (at exit; tests between engines)."""
    with _tunnels_lock:
        for found in _tunnels.values():
            found.close()
        _tunnels.clear()


atexit.register(close_tunnels)


def _open_tunnel(endpoint: Endpoint) -> Tunnel:
    """Refuse host key checking turned off; probe the host with BatchMode (an untrusted key,
    a refused login, a missing engine said in words); then forward its engine's socket."""
    config = subprocess.run(
        ssh_command(endpoint, "-G"), capture_output=True, text=True, check=False, timeout=10
    )
    checking = next(
        (line.split()[1] for line in config.stdout.splitlines() if line.startswith("stricthost")),
        "ask",
    )
    if checking in UNCHECKED_HOST_KEYS:
        raise Refused(
            f"{endpoint.describe()}: your SSH configuration has StrictHostKeyChecking "
            f"{checking} for this host, so a changed or unknown host key would be accepted "
            "silently.",
            "Remove that setting for this host (in ~/.ssh/config or /etc/ssh/ssh_config); "
            "stack-tui operates an environment only over a host key you have verified.",
        )
    remote_socket = _probe(endpoint)
    directory = Path(tempfile.mkdtemp(prefix="engine-", dir=_tunnels_home()))  # 0700
    local = directory / "docker.sock"
    forward = ssh_command(
        endpoint,
        *batch(),
        "-T",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        f"ServerAliveInterval={keepalive_interval()}",
        "-o",
        f"ServerAliveCountMax={KEEPALIVE_PROBES}",
        "-o",
        "StreamLocalBindMask=0177",
        "-L",
        f"{local}:{remote_socket}",
    )
    proc = subprocess.Popen(
        [*forward, "cat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # no terminal to ask on, and our Ctrl-C is not its
    )
    found = Tunnel(proc, directory)
    deadline = time.monotonic() + SSH_CONNECT_TIMEOUT + 20
    while not _answers(local):  # ssh says nothing when the forward is up: look for it
        if not found.alive() or time.monotonic() > deadline:
            said = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            found.close()
            raise _ssh_error(endpoint, said, proc.returncode)
        time.sleep(0.01)
    return found


def keepalive_interval() -> int:
    """Seconds between two keepalive probes: KEEPALIVE_PROBES unanswered ones take DEAD_AFTER."""
    return max(1, DEAD_AFTER // KEEPALIVE_PROBES)


def _tunnels_home() -> Path:
    """Where this user's tunnel sockets live. A process killed outright leaves its directory
    behind (its ssh ends, nothing else runs): the ones whose socket no longer answers are
    removed here, the next time a tunnel opens."""
    home = Path(tempfile.gettempdir()) / f"stack-tui-engines-{os.getuid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    found = home.lstat()
    if found.st_uid != os.getuid() or not stat.S_ISDIR(found.st_mode) or found.st_mode & 0o077:
        return Path(tempfile.gettempdir())  # not ours alone: a private mkdtemp in /tmp then
    for left in home.iterdir():
        sock = left / "docker.sock"
        if sock.exists() and not _answers(sock):
            shutil.rmtree(left, ignore_errors=True)
    return home


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _probe(endpoint: Endpoint) -> str:
    """The remote engine's socket path, once its engine answered there."""
    try:
        done = subprocess.run(
            [*ssh_command(endpoint, *batch()), REMOTE_PROBE],
            capture_output=True,
            text=True,
            check=False,
            timeout=SSH_CONNECT_TIMEOUT + 20,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise EngineUnreachable(
            f"{endpoint.describe()} did not answer over SSH within {SSH_CONNECT_TIMEOUT + 20} s.",
            "Check the host is up and reachable (ssh to it by hand).",
        ) from None
    said = done.stdout.strip().splitlines()
    if done.returncode != 0 or not said or not said[-1].startswith("unix://"):
        raise _ssh_error(endpoint, done.stderr, done.returncode)
    return said[-1].removeprefix("unix://")


def _ssh_error(endpoint: Endpoint, stderr: str, code: int | None) -> StackError:
    said = [line for line in stderr.strip().splitlines() if line.strip()]
    reason = said[-1] if said else f"ssh exited with {code}"
    host = urlsplit(endpoint.via or endpoint.host).hostname
    if any("Host key verification failed" in line for line in said):
        return Refused(
            f"{endpoint.describe()}: the SSH host key of {host} is not trusted "
            "(not in known_hosts, or changed). Nothing was done.",
            f"Check the key's fingerprint with the host's owner, then add it: ssh-keyscan "
            f"{host} >> ~/.ssh/known_hosts (after comparing). stack-tui never accepts a key.",
        )
    if code == 255 or code is None:  # ssh's own failure: connection, authentication
        return EngineUnreachable(
            f"{endpoint.describe()} is unreachable over SSH: {reason}",
            "Check the host, your key (ssh-add -l) and that you can log in with ssh by hand.",
        )
    return EngineUnreachable(
        f"{endpoint.describe()}: logged in, but its engine does not answer: {reason}",
        "Start dockerd on that host, and check the login user may use it (docker group).",
    )
