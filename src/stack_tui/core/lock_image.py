"""The image stack-tui's own containers on a remote engine run: one program, a few dozen bytes
of machine code, that reads its stdin until the end and exits.

The engine lock is a container (a name the engine gives once, atomically), and a container
needs an image on that engine. A host that never ran the environment has none, and pulling one
needs a registry that operators' hosts may not reach; the environment's own images arrive only
with its first deploy, the very operation the lock must cover. So the image is made here and
loaded through the engine's API (`docker load`): a layer holding that one program, a config
whose bytes (hence its ID) are the same on every operator's machine, so loading it again is a
no-op and two machines never disagree about it. Written out as instructions rather than built,
so nothing but this file is trusted: its whole behaviour is the loop below, for the two
architectures Docker hosts run (amd64, arm64).

The audit copy (core.engine_audit) uses it too, as the root of containers that are never
started: a place to mount a volume into for the engine's archive API.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from typing import Any

from stack_tui.core import engine
from stack_tui.core.errors import Refused

PROGRAM = "/wait-for-eof"
REPOSITORY = "stack-tui/engine-lock"

#: read(0, sp, 16) until it returns 0 (the end of stdin) or an error, then exit_group(0).
_X86_64 = bytes.fromhex(
    "31c0"  # xor eax, eax          (read)
    "31ff"  # xor edi, edi          (fd 0)
    "4889e6"  # mov rsi, rsp        (into the stack: argv, no longer needed)
    "ba10000000"  # mov edx, 16
    "0f05"  # syscall
    "4885c0"  # test rax, rax
    "7fed"  # jg back to the read   (more bytes: read on)
    "31ff"  # xor edi, edi
    "b8e7000000"  # mov eax, 231    (exit_group)
    "0f05"  # syscall
)
_AARCH64 = b"".join(
    struct.pack("<I", instruction)
    for instruction in (
        0xD2800000,  # mov x0, #0           (fd 0)
        0x910003E1,  # mov x1, sp
        0xD2800202,  # mov x2, #16
        0xD28007E8,  # mov x8, #63          (read)
        0xD4000001,  # svc #0
        0xF100001F,  # cmp x0, #0
        0x54FFFF4C,  # b.gt back to the first instruction
        0xD2800000,  # mov x0, #0
        0xD2800BC8,  # mov x8, #94          (exit_group)
        0xD4000001,  # svc #0
    )
)
#: The engine's architecture (as `docker version` names it) -> ELF machine number, code.
PROGRAMS = {"amd64": (62, _X86_64), "arm64": (183, _AARCH64)}


def executable(machine: int, code: bytes) -> bytes:
    """A static ELF64 executable: its header, one loadable segment (the file), the code."""
    base, header_size = 0x400000, 64 + 56
    size = header_size + len(code)
    elf_header = struct.pack(
        "<4sBBBBB7xHHIQQQIHHHHHH",
        b"\x7fELF",
        2,  # 64-bit
        1,  # little-endian
        1,  # ELF version
        0,  # System V ABI
        0,
        2,  # ET_EXEC
        machine,
        1,
        base + header_size,  # entry: the first instruction
        64,  # program headers right after this header
        0,  # no section headers
        0,
        64,
        56,
        1,
        0,
        0,
        0,
    )
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)  # PT_LOAD, R+X
    return elf_header + segment + code


def image_archive(architecture: str) -> tuple[str, bytes]:
    """(reference, `docker save` archive) of the image for `architecture`, byte for byte the
    same every time: its ID is the hash of its config, and the tag carries that ID."""
    machine, code = PROGRAMS[architecture]
    layer = _tar({PROGRAM.lstrip("/"): (executable(machine, code), 0o555)})
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Entrypoint": [PROGRAM], "Labels": {"org.stack-tui.image": "engine-lock"}},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "stack-tui"}],
        },
        sort_keys=True,
    ).encode()
    image_id = hashlib.sha256(config).hexdigest()
    reference = f"{REPOSITORY}:{image_id[:12]}"
    manifest = json.dumps(
        [{"Config": f"{image_id}.json", "RepoTags": [reference], "Layers": [f"{diff_id}.tar"]}]
    ).encode()
    archive = _tar(
        {
            "manifest.json": (manifest, 0o644),
            f"{image_id}.json": (config, 0o644),
            f"{diff_id}.tar": (layer, 0o644),
        }
    )
    return reference, archive


def ensure(client: Any, what: str) -> str:
    """The image's reference on `client`'s engine, loaded there first if it is not yet (a
    few hundred bytes; no registry). `what` names the engine for the error on an
    architecture we have no program for."""
    import docker

    architecture = str(engine.call(client.version).get("Arch", ""))
    if architecture not in PROGRAMS:
        raise Refused(
            f"{what} runs on {architecture or 'an unknown architecture'}: stack-tui's engine "
            "lock has a program for amd64 and arm64 engines only, and without the lock two "
            "operators' machines would not exclude each other.",
            "Operate this environment from one machine, or run its engine on amd64 or arm64.",
        )
    reference, archive = image_archive(architecture)
    try:
        engine.call(lambda: client.images.get(reference))
    except docker.errors.ImageNotFound:
        engine.call(lambda: client.images.load(archive))
    return reference


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar of `files` (name -> content, mode) owned by root, dated 0: the same bytes always."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, (content, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, 0
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
