"""Credentials never reach a file or a log.

A user may embed a key in an endpoint URL (``https://user:KEY@host/v1`` or ``...?api_key=KEY``).
The URL is used as given to make requests, but every copy that is written (``config.yaml``,
``summary.json``, trainer states) or shown (logs, error messages) goes through these functions
first: the ``user:password@`` part is dropped and the value of every query parameter whose name
says it is a secret is replaced by ``***``.

>>> redact_text("https://me:sk-123@api.example.com/v1?api_key=sk-456&model=m")
'https://api.example.com/v1?api_key=***&model=m'
>>> redact_text("http://127.0.0.1:8000/v1")
'http://127.0.0.1:8000/v1'
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "redact_text", "redact_values"]

REDACTED = "***"

# scheme://userinfo@ : everything up to the authority's last '@' goes (a password may hold an '@').
_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
# user:password@ without a (well-formed) scheme before it, e.g. in a malformed URL echoed by an
# error message; only at the start of a token, so that the scan stays linear.
_BARE_USERINFO_RE = re.compile(r"(?<![^\s/'\"(=])[^\s/'\"@:]++:[^\s/'\"@]++@")
# ?name=value / &name=value; the value goes when the name says it holds a secret. (Two simple
# patterns, not one with nested wildcards: linear time on any text.)
_PARAM_RE = re.compile(r"(?P<name>[?&;][A-Za-z0-9_.\-]+=)(?P<value>[^&#;\s'\"]+)")
_SECRET_NAME_RE = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential", re.IGNORECASE)


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it removed (see the module docstring)."""
    if "@" not in text and "=" not in text:
        return text
    text = _USERINFO_RE.sub(lambda m: m.group("scheme"), text)
    text = _BARE_USERINFO_RE.sub("", text)
    return _PARAM_RE.sub(
        lambda m: m.group("name") + REDACTED if _SECRET_NAME_RE.search(m.group("name")) else m.group(0), text
    )


def redact_values(obj: Any) -> Any:
    """A copy of a JSON-like structure (dicts, lists, tuples, strings) with every string redacted.

    >>> redact_values({"teacher": {"base_url": "https://u:k@h/v1", "samples": 8}})
    {'teacher': {'base_url': 'https://h/v1', 'samples': 8}}
    """
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {key: redact_values(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [redact_values(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(redact_values(value) for value in obj)
    return obj
