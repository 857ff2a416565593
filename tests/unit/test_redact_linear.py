"""Redaction takes time linear in its input, whatever the input (no quadratic regex).

The reliability campaign's fuzzer found a quarantined 70 kB string of letters that took
minutes to redact, stalling ingest. Each input here is 200,000 characters shaped against
one rule (long runs before a keyword, an "@", a "://"); the per-test timeout catches a
pattern that scans a run once per start position again.
"""

from __future__ import annotations

import pytest

from warden.domain.redact import redact_text

N = 200_000

ADVERSARIAL = {
    "letters": "x" * N,
    "letters then at": "x" * N + "@",
    "at in the middle": "a" * (N // 2) + "@" + "b" * (N // 2),
    "dotted letters then at": "a." * (N // 2) + "@b.cc",
    "keyword runs then equals": "password" * (N // 8) + "=",
    "letters around a colon": "x" * (N // 2) + ":" + "y" * (N // 2),
    "many schemes": "a://" * (N // 4) + "@",
    "scheme then long userinfo": "https://" + "u" * N + ":" + "p" * N + "@",
    "hex and colons": "a:" * (N // 2),
    "digits and dashes": "1234-" * (N // 5),
    "bearer words": "bearer " * (N // 7),
    "quoted keys": '"token": "' * (N // 10),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_redaction_of_a_hostile_string_finishes(name: str) -> None:
    text = ADVERSARIAL[name]
    out = redact_text(text)
    # Redaction only ever replaces; a string with no secret in it comes back whole.
    assert isinstance(out, str)
    assert len(out) <= len(text) + 64 * (text.count("@") + text.count("=") + text.count(":") + 1)


def test_the_bounded_rules_still_find_real_secrets() -> None:
    found = redact_text(
        "db_password=hunter2 mail alice@example.com url https://bob:s3cret@db.example/x"
    )
    assert "hunter2" not in found
    assert "alice@example.com" not in found
    assert "s3cret" not in found
