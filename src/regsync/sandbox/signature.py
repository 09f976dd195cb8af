"""The sandbox registry's check of a request's signature (registry-api.md §2), written for the server's side.

The registry client signs with :mod:`regsync.registry.signing`; this module shares no code with it, so that a
misreading of §2 in the client cannot pass the sandbox because both read the same code. Both are checked
against the same vectors computed with ``openssl dgst -hmac`` (``tests/sandbox/test_signature.py``).

It reads a request as the server received it: the raw path and query string (bytes, as in the ASGI scope),
the headers as text, the raw body. The string to sign is::

    METHOD "\\n" PATH "\\n" CANONICAL_QUERY "\\n" X-Timestamp "\\n" X-Nonce "\\n" hex(SHA-256(raw body))

and the signature the lowercase hex HMAC of it (its UTF-8 bytes), keyed with the client secret (UTF-8), under
``HMAC-SHA256`` (the standard library's HMAC over hashlib's SHA-256) or ``HMAC-SM3`` (RFC 2104 written out
here, over the SM3 hash of GB/T 32905-2016 from the ``cryptography`` package, block size 64).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote

from cryptography.hazmat.primitives import hashes

#: The method a request that sends no ``X-Sign-Method`` is checked under (registry-api.md §2: "the default").
DEFAULT_SIGN_METHOD = "HMAC-SHA256"
#: RFC 3986's unreserved characters besides letters and digits: left as they are in the canonical query.
_UNRESERVED = "-._~"
_SM3_BLOCK = 64
_LOWER_HEX = frozenset("0123456789abcdef")


def is_timestamp(text: str) -> bool:
    """Whether ``text`` (the ``X-Timestamp`` header) is Unix milliseconds in ASCII decimal digits, as §2 has it.

    Stricter than :meth:`str.isdigit`, which takes digits of other scripts (``"²"``) that :class:`int` refuses.
    """
    return text.isascii() and text.isdigit()


def _sm3(data: bytes) -> bytes:
    """The SM3 hash of ``data`` (32 bytes)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _hmac_sm3(key: bytes, data: bytes) -> str:
    """RFC 2104 HMAC over SM3 (block size 64 bytes), as lowercase hex."""
    if len(key) > _SM3_BLOCK:
        key = _sm3(key)
    key = key.ljust(_SM3_BLOCK, b"\0")
    inner = _sm3(bytes(b ^ 0x36 for b in key) + data)
    return _sm3(bytes(b ^ 0x5C for b in key) + inner).hex()


def canonical_query(raw_query: bytes) -> str:
    """The canonical query of registry-api.md §2, from the query string as received.

    Args:
        raw_query: the query string after ``?`` as sent (the ASGI scope's ``query_string``), e.g.
            ``b"cursor=a+b%2Bc&limit=50"``.

    Returns:
        Each ``name=value`` pair decoded (``%XX`` as UTF-8, ``+`` as a space, as clients encode a form; a
        name without ``=`` has the empty value), percent-encoded again per RFC 3986 (only ``A-Z a-z 0-9 - . _
        ~`` left as they are), sorted by encoded name then encoded value and joined with ``&``; ``""`` when
        there is no parameter.
    """
    pairs = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
    encoded = sorted((quote(name, safe=_UNRESERVED), quote(value, safe=_UNRESERVED)) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def string_to_sign(method: str, raw_path: bytes, raw_query: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    """The string the client signed, rebuilt from the request as received (registry-api.md §2).

    Args:
        method: the HTTP method as received (``GET``, ``POST``, …).
        raw_path: the path as sent, including the base path (``b"/api/v1/batch"``); anything from ``?`` on
            is ignored.
        raw_query: the query string as sent (see :func:`canonical_query`).
        timestamp: the ``X-Timestamp`` header as received.
        nonce: the ``X-Nonce`` header as received.
        body: the raw request body (``b""`` when there is none).

    Returns:
        The six lines joined with ``\\n`` (no final newline); the path is read as Latin-1 (one character a
        byte), the body is represented by the lowercase hex SHA-256 of its bytes.
    """
    path = raw_path.decode("latin-1").split("?", 1)[0]
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method, path, canonical_query(raw_query), timestamp, nonce, body_hash])


def expected_signature(secret: str, message: str, sign_method: str) -> str:
    """The signature a client holding ``secret`` sends for ``message``: lowercase hex, 64 characters.

    Raises:
        ValueError: ``sign_method`` is not one of ``HMAC-SHA256``, ``HMAC-SM3``.
    """
    if sign_method == "HMAC-SHA256":
        return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    if sign_method == "HMAC-SM3":
        return _hmac_sm3(secret.encode(), message.encode())
    raise ValueError(f"unknown signature method {sign_method!r}")


def signature_matches(secret: str, message: str, sign_method: str, signature: str) -> bool:
    """Whether ``signature`` (the ``X-Signature`` header) is ``message``'s under ``sign_method``.

    Compared in constant time. Only the lowercase hex that §2 prescribes (and the client writes) matches: an
    upper-case, empty or non-hex ``signature`` never does, nor does an unknown ``sign_method``.
    """
    if not signature or not set(signature) <= _LOWER_HEX:
        return False
    try:
        expected = expected_signature(secret, message, sign_method)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)
