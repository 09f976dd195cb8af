"""Request signing of the registry interface (registry-api.md §2).

The string to sign is::

    METHOD "\\n" PATH "\\n" CANONICAL_QUERY "\\n" X-Timestamp "\\n" X-Nonce "\\n" hex(SHA-256(raw body))

and the signature is the lowercase hex HMAC of it, keyed with the client secret, under ``HMAC-SHA256``
(the default) or ``HMAC-SM3`` (RFC 2104 over the SM3 hash of GB/T 32905-2016, block size 64). SM3 comes
from the ``cryptography`` package (OpenSSL's implementation). Both the registry client and the sandbox
registry use this module; its output is checked in the tests against vectors computed independently
(``openssl dgst -hmac``).
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import secrets
from collections.abc import Iterable
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from regsync.settings import SIGN_METHODS as SIGN_METHODS  # the list is owned by settings (it checks the setting)

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
_NONCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Return the canonical query of registry-api.md §2.

    Args:
        params: (name, value) pairs as sent, already decoded.

    Returns:
        ``name=value`` pairs sorted by name then value, each percent-encoded per RFC 3986 (unreserved
        characters ``A-Z a-z 0-9 - . _ ~`` left as they are), joined with ``&``; ``""`` when empty.
    """
    enc = [(quote(k, safe="-._~"), quote(v, safe="-._~")) for k, v in params]
    return "&".join(f"{k}={v}" for k, v in sorted(enc))


def string_to_sign(method: str, path: str, query: str, timestamp_ms: str, nonce: str, body: bytes) -> str:
    """Build the string to sign (registry-api.md §2).

    Args:
        method: the HTTP method, upper case.
        path: the request path as sent, including the base URL's path (``/api/v1/batch``).
        query: the canonical query (:func:`canonical_query`).
        timestamp_ms: ``X-Timestamp``, Unix milliseconds as a decimal string.
        nonce: ``X-Nonce``.
        body: the raw request body (``b""`` when there is none).
    """
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, query, timestamp_ms, nonce, body_hash])


def sign(secret: str, message: str, method: str = "HMAC-SHA256") -> str:
    """Return the lowercase hex HMAC of ``message`` keyed with ``secret``.

    Raises:
        ValueError: ``method`` is not one of :data:`SIGN_METHODS`.
    """
    key = secret.encode()
    data = message.encode()
    if method == "HMAC-SHA256":
        return std_hmac.new(key, data, hashlib.sha256).hexdigest()
    if method == "HMAC-SM3":
        h = crypto_hmac.HMAC(key, hashes.SM3())
        h.update(data)
        return h.finalize().hex()
    raise ValueError(f"unknown sign method {method!r}; expected one of {', '.join(SIGN_METHODS)}")


def new_nonce(length: int = 32) -> str:
    """A fresh random nonce of ``length`` characters of ``[A-Za-z0-9]`` (16–64, registry-api.md §2)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def verify(secret: str, message: str, method: str, signature: str) -> bool:
    """Whether ``signature`` is the HMAC of ``message`` under ``method``, compared in constant time."""
    try:
        expected = sign(secret, message, method)
    except ValueError:
        return False
    return std_hmac.compare_digest(expected, signature.lower())
