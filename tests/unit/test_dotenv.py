"""`.env` read as Compose reads it, and redaction of whole secrets only."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import pytest

from stack_tui.core import dotenv
from stack_tui.core.errors import Refused


def parsed(tmp_path: Path, text: str, **environ: str) -> dict[str, str]:
    path = tmp_path / ".env"
    path.write_text(text)
    return dotenv.parse(path, environ=environ)


def test_quotes_comments_and_escapes_as_compose_reads_them(tmp_path: Path) -> None:
    values = parsed(
        tmp_path,
        'A="v" # a comment\n'
        'B="say \\"hi\\""\n'
        "C=plain # another\n"
        "export D=exported\n"
        "E='single # not a comment'\n"
        "# F=commented out\n"
        "\n",
    )
    assert values == {
        "A": "v",
        "B": 'say "hi"',
        "C": "plain",
        "D": "exported",
        "E": "single # not a comment",
    }


def test_interpolation_takes_the_process_environment_first(tmp_path: Path) -> None:
    text = "HOST=db\nURL=postgres://${HOST}/x\nFROM_ENV=${OUTER}\nLITERAL='${HOST}'\n"
    values = parsed(tmp_path, text, OUTER="outside", HOST="envhost")
    assert values["URL"] == "postgres://envhost/x"
    assert values["FROM_ENV"] == "outside"
    assert values["LITERAL"] == "${HOST}"
    assert parsed(tmp_path, text)["URL"] == "postgres://db/x"


SECRET = "hunter2-very-secret-99"  # noqa: S105 (a test value)


@pytest.mark.parametrize(
    "line",
    [
        "LOG_LEVEL debug",
        f"{SECRET}",
        f"QDRANT_API_KEY {SECRET}",
        f'POSTGRES_PASSWORD="{SECRET}',
        f"1BAD-KEY={SECRET}",
    ],
)
def test_a_bad_line_is_refused_without_its_content(tmp_path: Path, line: str) -> None:
    with pytest.raises(Refused) as caught:
        parsed(tmp_path, f"DOMAIN=x\n{line}\nOTHER=y\n")
    text = caught.value.message + caught.value.hint
    assert "line 2" in caught.value.message, text
    assert SECRET not in text and "hunter2" not in text and "debug" not in text


def test_missing_file_and_bad_encoding_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Refused, match=r"No \.env file"):
        dotenv.parse(tmp_path / "absent")
    (tmp_path / ".env").write_bytes(b"A=\xff\n")
    with pytest.raises(Refused, match="not valid UTF-8"):
        dotenv.parse(tmp_path / ".env")


def test_redaction_never_cuts_names_that_share_a_fragment_with_a_secret() -> None:
    hidden = dotenv.secret_values({"QDRANT_API_KEY": "acc-qdrant-key-9921"})
    line = "Container ai-agent-platform-dev-qdrant-1  Started"
    assert dotenv.redact(line, hidden) == line
    assert dotenv.redact("key=acc-qdrant-key-9921!", hidden) == "key=***!"


def test_a_password_containing_a_word_leaves_that_word_alone() -> None:
    hidden = dotenv.secret_values({"POSTGRES_PASSWORD": "postgres-2026-x"})
    assert dotenv.redact("postgres is healthy", hidden) == "postgres is healthy"
    assert dotenv.redact("password postgres-2026-x", hidden) == "password ***"


def test_url_encoded_and_base64_forms_are_redacted() -> None:
    secret = "p@ss/w0rd+with:specials"  # noqa: S105
    hidden = dotenv.secret_values({"DB_PASSWORD": secret})
    for form in (
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    ):
        assert dotenv.redact(f"x {form} y", hidden) == "x *** y", form


@pytest.mark.parametrize("value", ["agent", "admin12", "postgres", "password", "changeme"])
def test_short_or_word_like_values_are_not_redacted(value: str) -> None:
    assert dotenv.secret_values({"POSTGRES_PASSWORD": value}) == []


def test_only_secret_keys_are_redacted() -> None:
    assert dotenv.secret_values({"DOMAIN": "agent.example.com"}) == []
    assert "sk-test-secret-5d0c" in dotenv.secret_values({"OPENAI_API_KEY": "sk-test-secret-5d0c"})


def test_placeholders_are_secret_keys_still_holding_the_example_value() -> None:
    example = {"POSTGRES_PASSWORD": "change-me", "DOMAIN": "agent.example.com"}
    values = {"POSTGRES_PASSWORD": "change-me", "DOMAIN": "agent.example.com"}
    assert dotenv.placeholders(values, example) == ["POSTGRES_PASSWORD"]


def test_a_quoted_secret_that_compose_cut_short_is_redacted() -> None:
    hidden = dotenv.secret_values({"POSTGRES_PASSWORD": "pg-secret-8c1f2"})
    said = 'invalid shm_size: parsing "pg-secret-8c1f": invalid size'
    assert dotenv.redact(said, hidden) == 'invalid shm_size: parsing "***": invalid size'
    untouched = 'container "pg-secret" and name pg-secret-8c1f-db'
    assert dotenv.redact(untouched, hidden) == untouched
