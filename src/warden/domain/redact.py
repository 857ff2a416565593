"""Redaction of secrets and personal data from JSON-like values. Pure core (domain).

DESIGN.md invariant 6 says secrets never reach a log, the audit log or a model's context:
the ingest gate redacts each event's data before it is stored (:data:`STORED_SETTINGS`),
and everything a model adapter sends goes through :func:`redact` first.

What is replaced, each by a typed placeholder such as ``[REDACTED:email]``:

- the whole value under a key that names a secret (``password``, ``api_key``, ``cookie``, …);
- ``key=value`` / ``key: value`` pairs in free text whose key names a secret;
- values that look like secrets: PEM blocks, credentials in URLs, bearer / basic
  credentials, JWTs, AWS access key ids, well-known token formats, long high-entropy strings;
- personal data: e-mail addresses, credit-card numbers (Luhn-checked), phone numbers and
  (by setting) IPv4 / IPv6 addresses.

The rules err towards redacting: an identifier that merely *looks* random may be replaced
too. Strings listed in ``keep`` (service and action names) are never taken for random
secrets. Redaction is idempotent: redacting a redacted value changes nothing.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

PLACEHOLDER_PREFIX = "[REDACTED:"


def placeholder(kind: str) -> str:
    """The text that stands in for a redacted value of ``kind``."""
    return f"{PLACEHOLDER_PREFIX}{kind}]"


@dataclass(frozen=True, slots=True)
class RedactionSettings:
    """Which optional rules apply, and how long a string must be to count as random."""

    ip_addresses: bool = True
    phone_numbers: bool = True
    high_entropy: bool = True
    min_secret_length: int = 20
    # Keys (any depth, any case) whose values are redacted whole, besides the secret ones.
    fields: frozenset[str] = frozenset()
    # Integers of 13 to 19 digits that pass Luhn taken for card numbers (off where
    # timestamps in milliseconds and large ids are common).
    card_integers: bool = True

    def __post_init__(self) -> None:
        if self.min_secret_length < 8:
            raise ValueError("min_secret_length must be at least 8")


@dataclass(frozen=True, slots=True)
class Redaction:
    """A redacted copy of a value and how many things of each kind were replaced."""

    value: Any
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many things were replaced in all."""
        return sum(self.counts.values())


DEFAULT_SETTINGS = RedactionSettings()

STORED_SETTINGS = RedactionSettings(
    ip_addresses=False, phone_numbers=False, high_entropy=False, card_integers=False
)
"""For event data before it is stored: recognisable secrets and personal data, but not
addresses, numbers or ids that agents read (a deploy's commit hash, a host's address)."""

# -- keys that name a secret ---------------------------------------------------------------

# Matched against the key lower-cased with everything but letters and digits removed.
_SECRET_KEY_PARTS = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey",
    "privatekey", "signingkey", "encryptionkey", "authorization", "authtoken",
    "credential", "cookie", "sessionid", "sessionkey", "connectionstring",
)  # fmt: skip
_SECRET_KEY_EXACT = frozenset({"auth", "pwd", "pass", "dsn", "jwt", "bearer", "sig", "otp"})


_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z0-9_]+\]")


def is_secret_key(key: str) -> bool:
    """True when a mapping key names something secret (its value is then redacted whole)."""
    norm = re.sub(r"[^a-z0-9]", "", _folded(_PLACEHOLDER.sub("", key)))
    return norm in _SECRET_KEY_EXACT or any(part in norm for part in _SECRET_KEY_PARTS)


# -- patterns in free text, applied in this order ------------------------------------------

_KEY_WORD = (
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|client[_-]?secret|authorization|auth(?![a-z])|credentials?"
    r"|session[_-]?id)"
)
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]{1,64}-----[\s\S]*?(?:-----END [A-Z0-9 ]{1,64}-----|\Z)")
_URL_CREDENTIALS = re.compile(
    r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]{0,31}://)([^\s:/@\[\]]{0,256}:[^\s@]{0,256})@"
)
_BEARER = re.compile(r"(?i)\b(?:bearer|basic)\s+(?=([A-Za-z0-9\-._~+/=]+))")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_TOKEN = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|sk-[A-Za-z0-9_\-]{20,}|glpat-[A-Za-z0-9_\-]{20,}|AIza[0-9A-Za-z_\-]{35})"
)
_AWS_KEY = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b")
_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization|(?:set-)?cookie)(\s*:\s*)([^\r\n]+)")
# Runs of name characters are bounded and must start where a name starts: unbounded runs
# before a keyword or an "@" try every start position of a long run, and a 70 kB string
# of letters then took minutes (quadratic), stalling ingest.
_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]{{0,64}}?{_KEY_WORD}[A-Za-z0-9_.\-]{{0,64}})"
    r"([\"']?\s*[:=]\s*)(\"[^\"\n]*\"?|'[^'\n]*'?|[^\s,;&\"']+)"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}"
    r"(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
)
_CARD = re.compile(
    r"\b(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?|\d{4}[ -]\d{6}[ -]\d{5})\b"
)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%[\w.]+)?(?![\w:])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]?\d{2,4}){1,4}"
    r"|\(\d{3}\)\s?\d{3}[\s.\-]\d{4}|\d{3}[\s.\-]\d{3}[\s.\-]\d{4})(?![\w])"
)
# Something at least one rule above (not the IP, phone or entropy ones) needs before it
# can match, lower-cased: a string with none of them is left as it is without running them.
# These rules match on a word alone: PEM blocks, URL credentials and e-mail addresses (an
# "@"), bearer / basic credentials, JWTs, token formats and AWS key ids.
_ALONE_WORDS = (
    "-----begin", "@", "bearer", "basic", "eyj", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
    "github_pat_", "xox", "sk-", "glpat-", "aiza", "akia", "asia", "abia", "acca", "agpa",
    "aida", "aroa",
)  # fmt: skip
# These only name a secret followed by a ":" or "=" (a header or a key=value pair): a
# service named "payments-api", or a probe "sim:auth", is not worth running every rule on.
_PAIR_WORDS = (
    "authorization", "cookie", "pass", "pwd", "secret", "token", "api", "access", "private",
    "auth", "credential", "session",
)  # fmt: skip
_MAYBE_WORDS = (*_ALONE_WORDS, *_PAIR_WORDS)
_MAYBE_CARD = re.compile(r"\d{4}[ -]?\d{4}")


# And what a key needs to name a secret (a superset of is_secret_key's words).
_MAYBE_KEY_WORDS = (
    *_MAYBE_WORDS,
    "signing",
    "encryption",
    "connection",
    "dsn",
    "jwt",
    "sig",
    "otp",
)


# One pass over the text for all the words (the same answer as testing each in turn).
_ALONE = re.compile("|".join(map(re.escape, _ALONE_WORDS)))
_PAIR = re.compile("|".join(map(re.escape, _PAIR_WORDS)))
_KEY_WORDS = re.compile("|".join(map(re.escape, _MAYBE_KEY_WORDS)))


def _paired(lowered: str) -> bool:
    """Whether a word of :data:`_PAIR_WORDS` is followed by a ":" or "=" in the same text.

    Texts may be joined by NUL (no rule matches across one). The first such word of each
    text is enough: a ":" or "=" after a later one is after the first too.
    """
    start = 0
    while (match := _PAIR.search(lowered, start)) is not None:
        end = lowered.find("\x00", match.end())
        end = len(lowered) if end < 0 else end
        if lowered.find(":", match.end(), end) >= 0 or lowered.find("=", match.end(), end) >= 0:
            return True
        start = end + 1
    return False


# The letters outside ASCII that the rules' case-insensitive matching takes for ASCII
# ones (Python's re): "\u017fecret=x" (a long s) is a pair to the rules, so the scans too.
_ASCII_TWINS = str.maketrans({"\u017f": "s", "\u212a": "k", "\u0130": "i", "\u0131": "i"})


def _folded(text: str) -> str:
    """``text`` lower-cased as the rules compare it (see :data:`_ASCII_TWINS`)."""
    return (text if text.isascii() else text.translate(_ASCII_TWINS)).lower()


def _maybe_secret(text: str) -> bool:
    lowered = _folded(text)
    paired = ("=" in text or ":" in text) and _paired(lowered)
    return paired or _ALONE.search(lowered) is not None or _MAYBE_CARD.search(text) is not None


def _maybe_secret_key(names: str) -> bool:
    found = _KEY_WORDS.search(_folded(names)) is not None
    return found or _MAYBE_CARD.search(names) is not None


def might_hold_secrets(value: Any, settings: RedactionSettings) -> bool:
    """False only when :func:`redact` with ``settings`` would surely change nothing.

    A cheap scan (substrings, no rule run) for the common case of a clean event; it
    answers True whenever the IP, phone or entropy rules are on.
    """
    if settings.ip_addresses or settings.phone_numbers or settings.high_entropy:
        return True
    texts: list[str] = []
    names: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        # JSON's own types are known by their type first: isinstance against Mapping is an
        # ABC check, and was the scan's largest cost on a clean event.
        if kind is str:
            texts.append(item)
        elif kind is dict:
            names.extend(map(str, item))
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is float or kind is bool or item is None:
            continue
        elif kind is int:
            if settings.card_integers:
                return True
        elif isinstance(item, str):
            texts.append(item)
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                names.append(str(key))
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and settings.card_integers:
            return True
    return _strings_might_hold(texts, names, settings)


def strings_might_hold_secrets(
    texts: list[str], keys: list[str], settings: RedactionSettings
) -> bool:
    """:func:`might_hold_secrets` of a value whose strings are ``texts``, its keys ``keys``.

    For a caller that has walked the value already. Its integers are not known here:
    True whenever ``settings`` takes integers for card numbers.
    """
    if settings.ip_addresses or settings.phone_numbers or settings.high_entropy:
        return True
    return settings.card_integers or _strings_might_hold(texts, keys, settings)


def _strings_might_hold(texts: list[str], names: list[str], settings: RedactionSettings) -> bool:
    if settings.fields and any(name.lower() in settings.fields for name in names):
        return True
    return not (_clean(names, _CLEAN_KEYS, _maybe_secret_key) and _clean(texts, _CLEAN_TEXTS))


# Short texts and keys the scan found clean, remembered (up to a bound): a stream's
# events repeat their keys and many of their values, and the scan is a pure function of
# the text, so a remembered one needs no search.
_CLEAN_TEXTS: set[str] = set()
_CLEAN_KEYS: set[str] = set()
_CLEAN_KEPT = 4096
_CLEAN_LONGEST = 64


def _clean(texts: list[str], known: set[str], maybe: Callable[[str], bool] = _maybe_secret) -> bool:
    """True when no text of ``texts`` may hold a secret by ``maybe`` (see :func:`_maybe_secret`)."""
    if known.issuperset(texts):  # the usual case: a stream repeats itself
        return True
    unknown = [t for t in texts if t not in known]
    # One search over the texts not known clean, joined by NUL: no word and no card
    # number holds a NUL, so nothing matches across two of them, and the answer is the
    # one of testing each text in turn.
    if not unknown:
        return True
    if maybe("\x00".join(unknown)):
        return False
    if len(known) < _CLEAN_KEPT:
        known.update(t for t in unknown if len(t) <= _CLEAN_LONGEST)
    return True


_RANDOM_RUN = re.compile(r"[A-Za-z0-9+/=_\-]+")


def _is_placeholder(text: str) -> bool:
    return _PLACEHOLDER.fullmatch(text) is not None


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn check of payment card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def shannon_entropy(text: str) -> float:
    """Bits of entropy per character of ``text`` (0 for an empty string)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _looks_like_credential(word: str) -> bool:
    """The word after "Bearer" or "Basic": a credential unless it reads like prose."""
    has_mark = re.search(r"[\d\-._~+/=]", word) is not None
    return len(word) >= 6 and (has_mark or re.search(r"[A-Z]", word[1:]) is not None)


def _looks_random(token: str, settings: RedactionSettings) -> bool:
    if len(token) < settings.min_secret_length:
        return False
    core = token.strip("=-_/+")
    if re.fullmatch(r"[0-9a-fA-F]+", core):
        # Hex digests, keys and ids: random when long and mixing letters and digits.
        has_digit = re.search(r"\d", core) is not None
        return len(core) >= 32 and has_digit and shannon_entropy(core) >= 3.0
    segments = [s for s in re.split(r"[/\-_.+=]", core) if s]
    if all(re.fullmatch(r"[a-z0-9]+", s) and len(s) < settings.min_secret_length for s in segments):
        return False  # a path or a kebab-case name: short lower-case words joined
    classes = sum(1 for p in (r"[a-z]", r"[A-Z]", r"\d") if re.search(p, core) is not None)
    return classes >= 2 and shannon_entropy(core) >= 3.5


class _Redactor:
    """One redaction pass: the rules, the counts, and the strings to keep."""

    def __init__(self, settings: RedactionSettings, keep: frozenset[str]) -> None:
        self.settings = settings
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self._quick = not (settings.ip_addresses or settings.phone_numbers or settings.high_entropy)

    def _hit(self, kind: str) -> str:
        self.counts[kind] += 1
        return placeholder(kind)

    def _whole(
        self, kind: str, check: Callable[[str], bool] | None = None
    ) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            if _is_placeholder(found) or (check is not None and not check(found)):
                return found
            return self._hit(kind)

        return replace

    def _url(self, match: re.Match[str]) -> str:
        scheme, userinfo = match.group(1), match.group(2)
        if _is_placeholder(userinfo):
            return match.group(0)
        return f"{scheme}{self._hit('url_credentials')}@"

    def _bearers(self, text: str) -> str:
        # The credential is matched by a lookahead, so "Bearer Bearer abc123" finds both.
        out: list[str] = []
        done = 0
        for match in _BEARER.finditer(text):
            credential = match.group(1)
            if match.start() < done or not _looks_like_credential(credential):
                continue
            out += [text[done : match.end()], self._hit("bearer_token")]
            done = match.end() + len(credential)
        return "".join(out) + text[done:]

    def _pair(self, match: re.Match[str]) -> str:
        raw = match.group(3)
        value = raw.strip("\"'")
        if not value or _is_placeholder(value):
            return match.group(0)
        quote = raw[0] if raw[0] in "\"'" else ""
        return f"{match.group(1)}{match.group(2)}{quote}{self._hit('secret')}{quote}"

    def _card(self, match: re.Match[str]) -> bool:
        digits = re.sub(r"\D", "", match.group(0))
        return 13 <= len(digits) <= 19 and luhn_valid(digits)

    def _phone(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if _is_placeholder(found):
            return found
        # A number has 7 to 15 digits (E.164). A longer run after a "+" is one followed by
        # other numbers ("+1 555 200 1000 10 100"): the longest prefix of whole groups that
        # can be a number goes, the rest stays.
        counted, cut = 0, 0
        for group in re.finditer(r"\d+", found):
            counted += len(group.group(0))
            if counted > 15:
                break
            if counted >= 7:
                cut = group.end()
        if cut == len(found) or (cut and found.startswith("+")):
            return self._hit("phone") + found[cut:]
        return found

    def _ipv6(self, found: str) -> bool:
        try:
            ipaddress.IPv6Address(found.split("%", 1)[0])
        except ValueError:
            return False
        return any(ch not in ":0" for ch in found)  # "::" and the like are not addresses

    def _random(self, match: re.Match[str]) -> str:
        token = match.group(0)
        if token in self.keep or not _looks_random(token, self.settings):
            return token
        return self._hit("high_entropy")

    def text(self, text: str) -> str:
        """Redact one string."""
        if text in self.keep or (self._quick and not _maybe_secret(text)):
            return text
        text = _PEM.sub(self._whole("private_key"), text)
        if "://" in text and "@" in text:
            text = _URL_CREDENTIALS.sub(self._url, text)
        text = _HEADER.sub(self._pair, text)
        text = self._bearers(text)
        text = _JWT.sub(self._whole("jwt"), text)
        text = _TOKEN.sub(self._whole("token"), text)
        text = _AWS_KEY.sub(self._whole("aws_key"), text)
        if ":" in text or "=" in text:
            text = _KEY_VALUE.sub(self._pair, text)
        if "@" in text:
            text = _EMAIL.sub(self._whole("email"), text)
        text = _CARD.sub(lambda m: self._hit("credit_card") if self._card(m) else m.group(0), text)
        if self.settings.ip_addresses:
            text = _IPV6.sub(self._whole("ipv6", self._ipv6), text)
            text = _IPV4.sub(self._whole("ipv4"), text)
        if self.settings.phone_numbers:
            text = _PHONE.sub(self._phone, text)
        if self.settings.high_entropy:
            text = _RANDOM_RUN.sub(self._random, text)
        return text

    def value(self, value: Any) -> Any:
        """Redact any JSON-like value, recursively; the input is never changed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return value
        if isinstance(value, int):
            digits = str(abs(value))
            if self.settings.card_integers and 13 <= len(digits) <= 19 and luhn_valid(digits):
                return self._hit("credit_card")
            return value
        if isinstance(value, Mapping):
            return self._mapping(value)
        if isinstance(value, list | tuple):
            items = [self.value(item) for item in value]
            return items if isinstance(value, list) else tuple(items)
        return self.text(str(value))

    def _mapping(self, value: Mapping[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            item = value[key]
            new_key = self.value(key)  # keys are redacted like values, and stay hashable
            named = isinstance(new_key, str) and new_key.lower() in self.settings.fields
            if isinstance(new_key, str) and (named or is_secret_key(new_key)):
                kept = item is None or (isinstance(item, str) and _is_placeholder(item))
                redacted = item if kept else self._hit("field" if named else "secret")
            else:
                redacted = self.value(item)
            unique, suffix = new_key, 2
            while unique in out:  # two keys redacted alike stay apart
                unique = f"{new_key}#{suffix}"
                suffix += 1
            out[unique] = redacted
        return out


def redact(
    value: Any,
    settings: RedactionSettings = DEFAULT_SETTINGS,
    *,
    keep: Iterable[str] = (),
) -> Redaction:
    """Return a redacted copy of ``value`` and the number of replacements per kind.

    Args:
        value: Any JSON-like value (mappings, lists, tuples, strings, numbers, booleans,
            None); other objects are redacted as their ``str()``.
        settings: Which optional rules apply.
        keep: Strings never taken for random secrets (service names, action names).

    Returns:
        The redacted copy (same shape, mappings as dicts with sorted keys, which are redacted
        too) and the counts.
    """
    redactor = _Redactor(settings, frozenset(keep))
    redacted = redactor.value(value)
    return Redaction(redacted, dict(sorted(redactor.counts.items())))


def redact_text(
    text: str, settings: RedactionSettings = DEFAULT_SETTINGS, *, keep: Iterable[str] = ()
) -> str:
    """Redact one string; the counts are dropped (use :func:`redact` to keep them)."""
    return str(redact(text, settings, keep=keep).value)


__all__ = [
    "DEFAULT_SETTINGS",
    "PLACEHOLDER_PREFIX",
    "STORED_SETTINGS",
    "Redaction",
    "RedactionSettings",
    "is_secret_key",
    "luhn_valid",
    "might_hold_secrets",
    "placeholder",
    "redact",
    "redact_text",
    "shannon_entropy",
    "strings_might_hold_secrets",
]
