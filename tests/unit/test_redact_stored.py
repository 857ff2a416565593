"""Redaction of event data before it is stored: the cheap pre-scan never lets a secret by."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from warden.domain.redact import STORED_SETTINGS, might_hold_secrets, redact

WORDS = ["password", "Bearer abcdefgh12345678", "AKIAABCDEFGHIJKLMNOP", "a@b.io", "ok", "api_key",
         "4111 1111 1111 1111", "-----BEGIN PRIVATE KEY-----", "sig", "x=1", "payments",
         "auth-api", ": ", "=", "Cookie", "session_id", "Authorization", "sim:", "\x00"]  # fmt: skip
texts = st.text(max_size=12) | st.sampled_from(WORDS) | st.builds("".join, st.lists(
    st.sampled_from(WORDS), max_size=3))  # fmt: skip
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)


@given(values)
@example({"api_key": "short"})
@example({"note": "token=abc"})
@example({"n": 4111111111111111})
@example({"note": "auth-api x: 1"})
@example(["Authorization", ": Basic abc123def"])
def test_what_the_scan_passes_redaction_leaves_alone(value: Any) -> None:
    if not might_hold_secrets(value, STORED_SETTINGS):
        assert redact(value, STORED_SETTINGS).total == 0


def test_clean_probe_data_skips_redaction_and_secrets_do_not() -> None:
    clean = {"service": "payments", "probe": "http://127.0.0.1:8102/health", "error": "refused"}
    assert not might_hold_secrets(clean, STORED_SETTINGS)
    assert might_hold_secrets({"headers": {"X-Api-Key": "k"}}, STORED_SETTINGS)
    assert might_hold_secrets(["mail jane@example.org"], STORED_SETTINGS)


@given(values, st.sampled_from(["password=hunter2", "api_key: k1", "4111 1111 1111 1111"]))
def test_texts_remembered_clean_change_no_answer(value: Any, secret: str) -> None:
    first = might_hold_secrets(value, STORED_SETTINGS)
    assert might_hold_secrets(value, STORED_SETTINGS) == first  # now remembered
    # Beside remembered clean texts and keys, a new secret is still found.
    assert might_hold_secrets([value, secret], STORED_SETTINGS)
    assert might_hold_secrets({secret: value}, STORED_SETTINGS)


def test_a_word_that_names_a_secret_needs_a_value_after_it() -> None:
    # Service names such as "auth-api" hold such a word; redacting them changes nothing.
    named = {"service": "auth-api", "probe": "sim:auth-api", "error": "refused: token-cache"}
    assert not might_hold_secrets(named, STORED_SETTINGS)
    assert redact(named, STORED_SETTINGS).total == 0
    for paired in ("sim:auth api_key=abc123", "note token: abc123", "Cookie: id=abc123"):
        assert might_hold_secrets({"error": paired}, STORED_SETTINGS)
        assert redact({"error": paired}, STORED_SETTINGS).total == 1


_TWINS = {"s": "\u017f", "k": "\u212a", "i": "\u0131"}  # what the rules' (?i) takes for ASCII


@given(
    st.sampled_from(["secret", "token", "password", "api_key", "private_key", "session_id"]),
    st.sampled_from(["{}=hunter2x9", "{}: hunter2x9", "Set-Cookie: {}=x"]),
    st.data(),
)
@example("secret", "{}=hunter2x9", None)  # a long s for the s: was stored as it came
def test_letters_the_rules_read_as_ascii_hide_no_secret(
    word: str, shape: str, data: st.DataObject | None
) -> None:
    def twin(c: str) -> str:
        if c not in _TWINS:
            return c
        return _TWINS[c] if data is None else data.draw(st.sampled_from([c, _TWINS[c]]))

    spelled = "".join(twin(c) for c in word)
    for plain, twinned in (
        ({"note": shape.format(word)}, {"note": shape.format(spelled)}),
        ({word: "hunter2x9"}, {spelled: "hunter2x9"}),
    ):
        assert might_hold_secrets(twinned, STORED_SETTINGS) == might_hold_secrets(
            plain, STORED_SETTINGS
        )
        assert redact(twinned, STORED_SETTINGS).total == redact(plain, STORED_SETTINGS).total
