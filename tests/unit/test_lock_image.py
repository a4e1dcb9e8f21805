"""The engine lock's program and image: the program (for this machine's architecture) runs
here and ends exactly when its stdin does; the image archive is the same bytes every time (so
every operator machine loads one image, and loading it again changes nothing). The image on a
real engine: tests/remote/test_remote_lock_audit.py."""

from __future__ import annotations

import io
import json
import platform
import subprocess
import tarfile
from pathlib import Path

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
