"""Credentials out of free text: logs, event and container messages, args, annotations, alerts.

Every text that comes from outside goes through ``scrub_text`` before it is stored, sent or
shown. The rules are the shapes secrets take in real logs and manifests (the ones public secret
scanners such as gitleaks and detect-secrets look for: provider token prefixes, credentials in
URLs, ``key=value`` pairs whose key names a credential, private keys, command-line passwords),
kept as data below. Scanners' own engines were not taken: they find secrets in files, line by
line, at a cost per line that every event message would pay; here a cheap pre-filter lets clean
text (most of it) through after a few substring tests.

Two promises pull against each other: nothing that looks like a credential survives, and a
sentence that merely mentions one ("pod leak-json-password: Back-off") stays readable. Keys
must stand alone (``db_password=``, ``"token":``, ``--api-key``), not be the tail of a hyphenated
name; the tests keep a corpus of both kinds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

__all__ = ["MASK", "scrub_text"]

MASK = "[REDACTED]"

_KEYWORDS = (
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|account[_-]?key"
    r"|shared[_-]?access[_-]?key|private[_-]?key|client[_-]?secret|credentials?|auth[_-]?token|auth"
    r"|session[_-]?key|encryption[_-]?key|signing[_-]?key|webhook[_-]?url|dsn|conn(?:ection)?[_-]?string"
)
# A key that names a credential: starts a token (not the tail of "leak-json-password"), may
# carry a prefix of letters, digits, '_' or '.' (DB_PASSWORD, aws_secret_access_key, dbPassword)
# and a suffix after '_' or '.' (SECRET_KEY, token.value), or is one of the hyphenated headers.
_KEY = (
    r"""(?<![\w\-/.])["']?(?:[A-Za-z0-9_.]*?(?:""" + _KEYWORDS + r""")(?:[_.][A-Za-z0-9_.]*)?"""
    r"""|x-api-key|x-auth-token|private-token|x-access-token|x-vault-token)["']?"""
)
_QUOTED_OR_BARE = r"""(?:"[^"\n]*"|'[^'\n]*'|(?!\[REDACTED\])[^\s"',;&}<>]+)"""


def _keep_quotes(match: re.Match[str]) -> str:
    """``key=value`` with the value masked; a quoted value keeps its quotes."""
    value = match.group("value")
    masked = f"{value[0]}{MASK}{value[0]}" if value[:1] in ("'", '"') else MASK
    return f"{match.group('key')}{match.group('sep')}{masked}"


Replacement = str | Callable[[re.Match[str]], str]

# (what it finds, pattern, replacement). Order matters where one shape contains another.
RULES: list[tuple[str, re.Pattern[str], Replacement]] = [
    # Private keys: whole blocks, a block cut off by the log tail (no END), and a tail that begins
    # inside a block (no BEGIN: base64 lines up to the END line).
    (
        "private key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.S,
        ),
        MASK,
    ),
    (
        "private key tail",
        re.compile(
            r"(?:^|(?<=\n))(?:[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*\r?\n)+[ \t]*-----END [A-Z0-9 ]*PRIVATE KEY-----"
        ),
        MASK,
    ),
    # Authorization headers: the scheme stays, the credential goes.
    (
        "authorization header",
        re.compile(
            r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)"""
            r"""(?:(bearer|basic|token|digest|apikey|negotiate|sso-key)\s+|(?!(?:bearer|basic|token|digest|apikey|negotiate|sso-key)\b))"""
            r"""(?!\[REDACTED\])([^\s"',]+)"""
        ),
        lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}",
    ),
    (
        "bearer token",
        re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\[REDACTED\])[A-Za-z0-9\-._~+/]{8,}=*"),
        rf"\1\2{MASK}",
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # Credentials in URLs: scheme://user:password@host; the password may hold '/' or '@' (the
    # last '@' before the host ends it).
    (
        "url password",
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/\s@]*:)(?!\[REDACTED\])(\S+)(@[^@\s/]+)"),
        rf"\1{MASK}\3",
    ),
    ("sentry dsn", re.compile(r"(?i)\b(https?://)[0-9a-f]{32}(@[\w.-]*sentry\.io)"), rf"\1{MASK}\2"),
    # Provider tokens, by prefix.
    ("aws access key id", re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA|ABIA|ACCA)[0-9A-Z]{16}\b"), MASK),
    ("google api key", re.compile(r"\bAIza[0-9A-Za-z\-_]{35}\b"), MASK),
    ("github token", re.compile(r"\b(?:ghp|gho|ghs|ghu|ghr|github_pat)_[A-Za-z0-9_]{20,}\b"), MASK),
    ("gitlab token", re.compile(r"\b(?:glpat|gldt|glrt|glptt|glcbt|gloas)-[A-Za-z0-9_\-]{20,}\b"), MASK),
    ("slack token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}\b"), MASK),
    ("slack app token", re.compile(r"\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+\b"), MASK),
    (
        "slack webhook",
        re.compile(r"(?i)\b(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_\-]+"),
        rf"\1{MASK}",
    ),
    (
        "discord webhook",
        re.compile(
            r"(?i)\b(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/)[A-Za-z0-9_\-]+"
        ),
        rf"\1{MASK}",
    ),
    (
        "teams webhook",
        re.compile(r"(?i)\b(https://[\w.-]+\.webhook\.office\.com/webhookb2/)\S+"),
        rf"\1{MASK}",
    ),
    ("stripe key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[0-9a-zA-Z]{10,}\b"), MASK),
    ("openai key", re.compile(r"\bsk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_\-]{20,}\b"), MASK),
    ("npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), MASK),
    ("pypi token", re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{50,}"), MASK),
    ("sendgrid key", re.compile(r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"), MASK),
    ("digitalocean token", re.compile(r"\bdo[por]_v1_[a-f0-9]{64}\b"), MASK),
    ("vault token", re.compile(r"\bhv[sbr]\.[A-Za-z0-9_\-]{24,}\b"), MASK),
    ("shopify token", re.compile(r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b"), MASK),
    ("huggingface token", re.compile(r"\bhf_[A-Za-z]{30,}\b"), MASK),
    ("databricks token", re.compile(r"\bdapi[a-f0-9]{32}\b"), MASK),
    ("grafana token", re.compile(r"\bgl(?:c|sa)_[A-Za-z0-9_+/=\-]{32,}"), MASK),
    ("new relic key", re.compile(r"\bNRAK-[A-Z0-9]{27}\b"), MASK),
    ("postman key", re.compile(r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"), MASK),
    ("linear key", re.compile(r"\blin_api_[A-Za-z0-9]{40}\b"), MASK),
    ("age key", re.compile(r"\bAGE-SECRET-KEY-1[0-9A-Z]{50,}\b"), MASK),
    ("telegram bot token", re.compile(r"\b\d{8,10}:AA[A-Za-z0-9_\-]{30,}\b"), MASK),
    ("mailgun key", re.compile(r"\bkey-[0-9a-z]{32}\b"), MASK),
    # Passwords on command lines: mysql -pPASS, --db-password VALUE, curl -u user:pass, .netrc.
    ("mysql -p", re.compile(r"(\bmysql\w*\b[^\n]*?\s-p)(?!\[REDACTED\])([^\s-]\S*)"), rf"\1{MASK}"),
    (
        "-a/-p password",
        re.compile(r"(\b(?:redis-cli|sshpass)\b[^\n]*?\s-[ap]\s*)(?!\[REDACTED\])(\S+)"),
        rf"\1{MASK}",
    ),
    ("curl user", re.compile(r"((?:^|\s)(?:-u|--user)\s+[^:\s]+:)(?!\[REDACTED\])(\S+)"), rf"\1{MASK}"),
    ("netrc", re.compile(r"(?i)(\blogin\s+\S+\s+password\s+)(?!\[REDACTED\])(\S+)"), rf"\1{MASK}"),
    (
        "password flag",
        re.compile(
            r"(?i)((?:^|(?<=\s)|(?<=[\"',\[]))--?[a-z0-9\-]*(?:password|passwd|secret|token|api-?key|credentials?)[a-z0-9\-]*)(\s+)(?!-)(?!\[REDACTED\])(\S+)"
        ),
        rf"\1\2{MASK}",
    ),
    # key=value, key: value, "key": "value" where the key names a credential.
    (
        "credential pair",
        re.compile(r"(?i)(?P<key>" + _KEY + r")(?P<sep>\s*[=:]\s*)(?P<value>" + _QUOTED_OR_BARE + r")"),
        _keep_quotes,
    ),
    ("azure sas signature", re.compile(r"(?i)([?&;]sig=)(?!\[REDACTED\])[A-Za-z0-9%+/=]{16,}"), rf"\1{MASK}"),
]

# Substrings at least one rule needs, lower-cased. Text with none of them (most event messages,
# evidence lines, healthy logs) is returned after these substring tests.
# NB: plain ``in`` tests, not one case-insensitive alternation: CPython's regex engine tries
# every alternative at every position, ~15 µs per short string.
_TRIGGERS = (
    "private key",
    "authorization",
    "bearer",
    "basic",
    "eyj",
    "://",
    "akia",
    "asia",
    "aroa",
    "aida",
    "abia",
    "acca",
    "aiza",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat",
    "glpat-",
    "gldt-",
    "glrt-",
    "glptt-",
    "glcbt-",
    "gloas-",
    "glc_",
    "glsa_",
    "xox",
    "xapp",
    "sk_",
    "rk_",
    "pk_",
    "sk-",
    "npm_",
    "pypi-",
    "sg.",
    "_v1_",
    "hvs.",
    "hvb.",
    "hvr.",
    "shp",
    "hf_",
    "dapi",
    "nrak-",
    "pmak-",
    "lin_api",
    "age-secret",
    ":aa",
    "key",
    "mysql",
    "redis-cli",
    "sshpass",
    "-u ",
    "--user",
    "pass",
    "pwd",
    "secret",
    "token",
    "credential",
    "auth",
    "dsn",
    "connstring",
    "conn_string",
    "conn-string",
    "connectionstring",
    "connection_string",
    "connection-string",
    "webhook",
    "sig=",
)


def _triggered(text: str) -> bool:
    lowered = text.lower()
    # NB: a loop, not ``any()`` over a generator: that resumes a frame per word, ~20% of the cost
    # of a diagnosis's scrubbing (every distinct line of every finding comes here).
    for word in _TRIGGERS:  # noqa: SIM110
        if word in lowered:
            return True
    return False


@functools.lru_cache(maxsize=8192)
def scrub_text(text: str) -> str:
    """Mask credentials in free text; cheap when there is nothing to mask.

    NB: cached: the same messages come again and again (a crash loop's BackOff, a probe's
    failure), and the watcher scrubs every one.
    """
    if not text or not _triggered(text):
        return text
    for _, pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text
