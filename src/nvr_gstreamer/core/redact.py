"""Keep camera passwords out of every string a user or a log can see.

Two mechanisms, applied together by :func:`redact`:

* URL user-info: ``rtsp://user:pass@host`` becomes ``rtsp://user:***@host`` for any scheme,
  wherever the URL stands in the text (GStreamer debug strings quote it freely).
* Registered secrets: passwords and tokens the program knows about (from the config) are
  replaced wherever they appear verbatim, for texts that carry them without a URL around them.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@  — the password stops at the last '@' before the host part.
_URL_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s:/@]*):(?P<password>[^\s/]*)@"
)

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()

# Shorter secrets than this would mask ordinary words; they are still masked inside URLs.
_MIN_SECRET_LENGTH = 4


def register_secret(secret: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it wherever it appears."""
    global _secrets
    if not secret or len(secret) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets = _secrets | {secret}


def forget_secrets() -> None:
    """Drop every registered secret (tests use this to stay independent)."""
    global _secrets
    with _lock:
        _secrets = frozenset()


def redact(text: str) -> str:
    """Return ``text`` with URL passwords and registered secrets masked."""
    if not text:
        return text
    out = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    # Longest first, so that a secret containing another is masked whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def redact_url(url: str) -> str:
    """A URL fit for display: its password, if any, masked."""
    return redact(url)


def strip_credentials(url: str) -> str:
    """The URL without its user-info (credentials travel separately, never in a URL)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
