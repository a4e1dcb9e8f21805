"""Off-host configuration, masking and restic's messages (pure logic)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stack_tui.core import dotenv, offsite
from stack_tui.core.errors import Refused


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(autouse=True)
def no_process_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in offsite.VARIABLES:
        monkeypatch.delenv(key, raising=False)


def test_masks_only_the_password_in_a_url() -> None:
    assert offsite.mask_location("rest:https://ops:s3cr3t@backup.example:8000/repo") == (
        "rest:https://ops:***@backup.example:8000/repo"
    )
    assert offsite.mask_location("sftp:ops@host:/srv/restic") == "sftp:ops@host:/srv/restic"
    assert offsite.mask_location("/srv/restic") == "/srv/restic"
    said = "Fatal: unable to open rest:https://ops:s3cr3t@backup.example:8000/repo: refused"
    assert "s3cr3t" not in offsite.mask_location(said)


def test_off_unless_a_repository_is_set(tmp_path: Path) -> None:
    env = write(tmp_path / ".env", "POSTGRES_PASSWORD=x\n")
    assert offsite.load(env) is None
    with pytest.raises(offsite.NotConfigured, match="not configured"):
        offsite.require(env)


def test_password_file_must_be_private_and_present(tmp_path: Path) -> None:
    secret = write(tmp_path / "pw", "hunter2-restic\n", 0o644)
    env = write(
        tmp_path / ".env", f"STACK_OFFSITE_REPOSITORY=/r\nSTACK_OFFSITE_PASSWORD_FILE={secret}\n"
    )
    with pytest.raises(Refused, match="readable by others") as refused:
        offsite.load(env)
    assert "chmod 600" in refused.value.hint
    assert "hunter2" not in str(refused.value)
    secret.chmod(0o600)
    config = offsite.require(env)
    assert config.password_file == secret and config.keep is None
    write(env, "STACK_OFFSITE_REPOSITORY=/r\n")
    with pytest.raises(Refused, match="STACK_OFFSITE_PASSWORD_FILE is not"):
        offsite.load(env)
    write(env, f"STACK_OFFSITE_REPOSITORY=/r\nSTACK_OFFSITE_PASSWORD_FILE={tmp_path / 'no'}\n")
    with pytest.raises(Refused, match="cannot read"):
        offsite.load(env)


def test_keep_must_be_positive_and_the_process_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = write(tmp_path / "pw", "pw\n")
    env = write(
        tmp_path / ".env",
        f"STACK_OFFSITE_REPOSITORY=/r\n"
        f"STACK_OFFSITE_PASSWORD_FILE={secret}\nSTACK_OFFSITE_KEEP=0\n",
    )
    with pytest.raises(Refused, match="positive"):
        offsite.load(env)
    monkeypatch.setenv("STACK_OFFSITE_KEEP", "30")
    assert offsite.require(env).keep == 30


def test_sftp_goes_through_our_strict_ssh(tmp_path: Path) -> None:
    secret = write(tmp_path / "pw", "pw-unit-secret-9\n")
    ssh_config = write(tmp_path / "ssh_config", "")
    env = write(
        tmp_path / ".env",
        "STACK_OFFSITE_REPOSITORY=sftp://ops@10.0.0.9:2222//srv/r\n"
        f"STACK_OFFSITE_PASSWORD_FILE={secret}\nSTACK_OFFSITE_SSH_CONFIG={ssh_config}\n",
    )
    command = offsite._base_command(offsite.require(env))
    assert not any("pw-unit-secret-9" in part for part in command), "never on a command line"
    option = command[command.index("--option") + 1]
    assert option.startswith("sftp.command=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes")
    assert f"-F {ssh_config} -p 2222 -l ops 10.0.0.9 -s sftp" in option


def test_restic_messages_become_errors_that_say_what_to_do(tmp_path: Path) -> None:
    config = offsite.Config("rest:https://u:pw-in-url-1234@h/", tmp_path / "pw", None, None)
    wrong = offsite.translate(config, "Fatal: wrong password or no key found\n")
    assert "refuses the password" in wrong.message and "pw-in-url-1234" not in wrong.message
    locked = offsite.translate(
        config,
        "unable to create lock in backend: repository is already "
        "locked exclusively by PID 7 on h by root\n",
    )
    assert "locked by another restic" in locked.message and "restic unlock" in locked.hint
    missing = offsite.translate(
        config,
        "Fatal: unable to open config file: Stat: 404\n"
        "Is there a repository at the following location?\n",
    )
    assert "offsite init" in missing.hint


def test_only_our_tagged_snapshots_count() -> None:
    tags = ["env=dev", "stamp=20260101_030000", "reason=manual", "size=10"]
    assert offsite.parse_snapshot({"id": "abc", "tags": tags}) is None, "not a complete copy"
    ours = offsite.parse_snapshot({"id": "abc", "tags": [*tags, offsite.COMPLETE_TAG]})
    assert ours is not None and ours.name == "dev_20260101_030000.sql.gz" and ours.size == 10
    assert offsite.parse_snapshot({"id": "x", "tags": ["env=qa", "stamp=20260101_030000"]}) is None
    assert offsite.parse_snapshot({"id": "x", "tags": ["stamp=nope", "env=dev"]}) is None
    assert offsite.parse_snapshot({"id": "x"}) is None
    assert os.sep not in offsite.stdin_filename("dev").split("/")[-1]


def test_a_password_in_any_url_of_env_is_a_secret() -> None:
    values = {"STACK_OFFSITE_REPOSITORY": "rest:https://ops:s3cr3t-9f@h:8000/"}
    assert dotenv.mask("STACK_OFFSITE_REPOSITORY", values["STACK_OFFSITE_REPOSITORY"]) == (
        "rest:https://ops:***@h:8000/"
    )
    assert "s3cr3t-9f" in dotenv.secret_values(values)
