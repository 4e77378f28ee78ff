"""Secrets out of messages: the one place that hides a password inside a URL.

A Qdrant URL (``https://user:secret@host:6333``) or a database URL may carry a password, and
either can end up in an error message that is printed (``stats``, search notices, ``sync``,
``check``, ``add``'s notice) or stored (the outbox's last error, a backup manifest's note).
:func:`mask_url` hides the password (and key-like query parameters) of one URL;
:func:`redact` does it for every URL found in a text, and for the known secrets given.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAMS = frozenset({"api_key", "api-key", "apikey", "key", "token", "password", "secret"})
# scheme://user:password@  (the password runs to the last @ before the host)
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)(?P<secret>[^\s/]*)@")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:api[_-]?key|apikey|key|token|password|secret)=)(?P<secret>[^&\s#]+)",
    re.IGNORECASE,
)


def mask_url(url: str) -> str:
    """``url`` with its password and key-like query parameters shown as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets_of(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    found += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS and v]
    return [s for s in found if len(s) >= 3]


def redact(text: str, *urls: str | None) -> str:
    """``text`` with every ``scheme://user:password@`` password and key-like query parameter
    masked, and each password or key of ``urls`` (the configured ones) masked wherever it
    appears (a driver may quote it without its URL)."""
    for url in urls:
        if url:
            for secret in sorted(_secrets_of(url), key=len, reverse=True):
                text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", text)
