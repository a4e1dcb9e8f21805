"""The engine lock's program and image: the program (for this machine's architecture) runs
here and ends exactly when its stdin does; both architectures' programs, run in a CPU emulator
(unicorn) with their system calls answered by the test, read stdin until it ends or fails and
then exit 0, and make no other call; the image archive is the same bytes every time (so
every operator machine loads one image, and loading it again changes nothing). The image on a
real engine: tests/remote/test_remote_lock_audit.py."""

from __future__ import annotations

import io
import json
import platform
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from stack_tui.core import lock_image

HERE = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "")


def test_the_program_waits_for_the_end_of_its_stdin(tmp_path: Path) -> None:
    if not HERE:
        pytest.fail(f"no program for this machine ({platform.machine()}): run on amd64/arm64")
    program = tmp_path / "wait-for-eof"
    program.write_bytes(lock_image.executable(*lock_image.PROGRAMS[HERE]))
    program.chmod(0o755)
    running = subprocess.Popen([str(program)], stdin=subprocess.PIPE)
    assert running.stdin is not None
    running.stdin.write(b"x" * 100)  # more than one read's worth: it reads on
    running.stdin.flush()
    with pytest.raises(subprocess.TimeoutExpired):
        running.wait(timeout=0.2)  # still waiting: its stdin is open
    running.stdin.close()
    assert running.wait(timeout=10) == 0


def test_the_image_archive_is_the_same_bytes_every_time() -> None:
    for architecture in lock_image.PROGRAMS:
        reference, archive = lock_image.image_archive(architecture)
        assert lock_image.image_archive(architecture) == (reference, archive)
        with tarfile.open(fileobj=io.BytesIO(archive)) as image:
            [manifest] = json.load(image.extractfile("manifest.json"))  # type: ignore[arg-type]
            config = json.load(image.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        assert manifest["RepoTags"] == [reference]
        assert config["architecture"] == architecture
        assert config["config"]["Entrypoint"] == [lock_image.PROGRAM]
    assert lock_image.image_archive("amd64")[0] != lock_image.image_archive("arm64")[0]


@pytest.mark.parametrize("architecture", sorted(lock_image.PROGRAMS))
@pytest.mark.parametrize(
    ("reads", "ends"),
    [([16, 5, 0], "at the end of stdin"), ([3, -9], "when stdin fails (EBADF)")],
)
def test_each_program_reads_until_its_stdin_ends_then_exits(
    architecture: str, reads: list[int], ends: str
) -> None:
    calls = emulate(architecture, reads)
    expected: list[tuple[str, int]] = [("read(0, sp, 16)", n) for n in reads]
    assert calls == [*expected, ("exit_group", 0)], (architecture, ends)


def emulate(architecture: str, reads: list[int]) -> list[tuple[str, int]]:
    """Run the program from its entry; each read returns the next of `reads` (bytes, or a
    negative errno). The calls it made, in order."""
    import unicorn
    from unicorn import arm64_const as arm
    from unicorn import x86_const as x86

    elf = lock_image.executable(*lock_image.PROGRAMS[architecture])
    base, stack = 0x400000, 0x7F8000
    amd64 = architecture == "amd64"
    if amd64:
        cpu = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
        number, args, result = (
            x86.UC_X86_REG_RAX,
            (x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX),
            x86.UC_X86_REG_RAX,
        )
        cpu.reg_write(x86.UC_X86_REG_RSP, stack)
    else:
        cpu = unicorn.Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM)
        number, args, result = (
            arm.UC_ARM64_REG_X8,
            (arm.UC_ARM64_REG_X0, arm.UC_ARM64_REG_X1, arm.UC_ARM64_REG_X2),
            arm.UC_ARM64_REG_X0,
        )
        cpu.reg_write(arm.UC_ARM64_REG_SP, stack)
    cpu.mem_map(base, 0x1000)
    cpu.mem_write(base, elf)
    cpu.mem_map(stack - 0x8000, 0x10000)
    read_call, exit_call = (0, 231) if amd64 else (63, 94)
    answers, calls = list(reads), []

    def system_call(uc: Any, *_: Any) -> None:
        called = uc.reg_read(number)
        fd, buffer, size = (uc.reg_read(r) for r in args)
        if called == read_call and answers:
            given = answers.pop(0)
            calls.append((f"read({fd}, {'sp' if buffer == stack else hex(buffer)}, {size})", given))
            uc.mem_write(buffer, b"x" * max(given, 0))
            uc.reg_write(result, given & 0xFFFFFFFFFFFFFFFF)
            return
        calls.append(("exit_group" if called == exit_call else f"call {called}", fd))
        uc.emu_stop()

    if amd64:
        cpu.hook_add(unicorn.UC_HOOK_INSN, system_call, None, 1, 0, x86.UC_X86_INS_SYSCALL)
    else:
        cpu.hook_add(unicorn.UC_HOOK_INTR, system_call)
    cpu.emu_start(base + 64 + 56, base + len(elf), count=1000)
    return calls
