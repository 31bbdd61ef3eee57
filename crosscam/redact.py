"""Credentials out of text: what crosscam logs, stores or prints never carries a camera's or a server's password.

``redact(text)`` replaces, anywhere in the text (a URL, an error message that quotes one, a log line):

- the user information of a URL (``rtsp://admin:secret@host/...`` -> ``rtsp://***@host/...``; a password
  with a raw ``@`` in it is covered too: everything up to the last ``@`` before the host goes);
- the values of query-string parameters that commonly carry secrets (``?password=...``, ``&token=...``,
  ``api_key``, ``auth``, ``sig``, ...), which become ``***``.

It is a pure function of the text; applying it twice gives the same text.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ : userinfo runs to the last "@" before the path, query or fragment (greedy)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#@]*(?:@[^\s/?#@]*)*)@")
_SECRET_NAMES = (
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "access_token",
    "auth",
    "authorization",
    "key",
    "apikey",
    "api_key",
    "sig",
    "signature",
    "credential",
    "credentials",
)
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;](?:" + "|".join(_SECRET_NAMES) + r")=)(?P<value>[^&;#\s'\"]*)",
    re.IGNORECASE,
)


def redact(text: object) -> str:
    """``text`` (any value, as ``str``) with URL credentials and secret query parameters replaced by ``***``."""
    s = str(text)
    s = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", s)
    return _QUERY_SECRET.sub(lambda m: f"{m['name']}{MASK}", s)
