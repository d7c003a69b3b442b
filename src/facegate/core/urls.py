"""URLs that may carry credentials, made safe to show."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# query parameters cameras use for credentials (``?user=admin&password=…``, ``?token=…``)
_SECRET_PARAM = re.compile(r"(?i)(^|&)((?:pass(?:word)?|pwd|passwd|token|key|api_key|auth|secret)=)[^&]*")


def redact_url(url: str) -> str:
    """The URL with any password (userinfo or a secret query parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}")
    if parts.query:
        parts = parts._replace(query=_SECRET_PARAM.sub(r"\1\2***", parts.query))
    return urlunsplit(parts)
