"""Credentials out of text: what crosscam logs, stores or prints never carries a camera's or a server's password.

``redact(text)`` replaces, anywhere in the text (a URL, an error message that quotes one, a log line):

- the user information of a URL (``rtsp://admin:secret@host/...`` -> ``rtsp://***@host/...``): everything
  between ``://`` and the URL's last ``@`` (a URL ends at whitespace or a quote). FFmpeg (``av_url_split``)
  ends the user information at the last ``@`` before the first ``/``, ``?`` or ``#``, so a password holding
  one of those works with FFmpeg only percent-encoded (``%2F``, ``%3F``, ``%23``); typed raw
  (``rtsp://admin:S3c/ret@host/x``) it is hidden all the same. The price of that margin: an ``@`` later in a
  URL (``http://cam/snap?user=a@b``) hides the host before it too. A URL with an empty authority
  (``file:///a@b.mp4``) has no user information and is left alone;
- the values of query-string parameters whose name says they carry a secret: a name that contains
  ``pass`` (``password``, ``passwd``, ``passphrase``), ``pwd``, ``secret``, ``token``, ``key``, ``auth``
  (``authbasic``, ``authorization``), ``sig`` (``signature``), ``credential``, ``session`` or ``cookie``,
  in any case, or a name that is ``pw`` or ends in ``_pw``/``-pw``; the value becomes ``***``.

It is a pure function of the text; applying it twice gives the same text.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ : a non-empty authority, userinfo to the last "@" of the URL (greedy; a URL ends at
# whitespace or a quote)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s\"'<>/][^\s\"'<>]*)@")
_SECRET_PARTS = ("pass", "pwd", "secret", "token", "key", "auth", "sig", "credential", "session", "cookie")
_SECRET_WORDS = re.compile(r"(?:^|[_.-])pw$")
_QUERY_PARAM = re.compile(r"(?P<name>[?&;](?P<key>[^=&;#\s'\"?]+)=)(?P<value>[^&;#\s'\"]*)")


def secret_name(name: str) -> bool:
    """Whether a query parameter named ``name`` carries a secret (the names the module docstring lists)."""
    name = name.lower()
    return any(part in name for part in _SECRET_PARTS) or bool(_SECRET_WORDS.search(name))


def redact(text: object) -> str:
    """``text`` (any value, as ``str``) with URL credentials and secret query parameters replaced by ``***``."""
    s = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", str(text))
    return _QUERY_PARAM.sub(lambda m: f"{m['name']}{MASK}" if secret_name(m["key"]) else m[0], s)
