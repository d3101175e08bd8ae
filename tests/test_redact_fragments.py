"""A token echoed cut short, or any run of 16 or more of its characters, is redacted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from importer.core.redact import forget_secrets, holds_secret, keep_secret, redact

TOKEN = "pat-na1-0123abcd-4567-89ab-cdef-0123456789ab"


@pytest.fixture(autouse=True)
def kept() -> Iterator[None]:
    keep_secret(TOKEN)
    yield
    forget_secrets()


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        (f"bad token {TOKEN[:30]}… (cut)", "bad token [redacted]… (cut)"),
        (f"x{TOKEN[7:25]}y", "x[redacted]y"),
        (f"ends {TOKEN[-16:]}", "ends [redacted]"),
        (
            f"{TOKEN[:15]} is too short to be the token",
            f"{TOKEN[:15]} is too short to be the token",
        ),
    ],
    ids=["prefix", "middle", "suffix", "15-characters-kept"],
)
def test_a_run_of_the_token_is_redacted(said: str, shown: str) -> None:
    assert redact(said, shapes=False) == shown
    if shown != said:  # a quick look: it may say yes to a text that holds no run
        assert holds_secret(said.encode())


def test_redacting_a_long_text_stays_fast() -> None:
    text = "a row of a long log line " * 200_000
    started = time.perf_counter()
    assert redact(text) == text
    assert time.perf_counter() - started < 1.0
