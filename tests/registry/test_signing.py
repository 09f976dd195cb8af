"""regsync.registry.signing against fixed vectors computed independently with the openssl CLI.

The messages below were written by hand from registry-api.md §2 and signed with OpenSSL 3.0.19::

    printf '%s\\n%s\\n%s\\n%s\\n%s\\n%s' GET /api/v1/changes '<query>' 1764374400000 \\
        abcDEF0123456789abcdef e3b0c442…7852b855 > m1.txt
    openssl dgst -sha256 -hmac 'test-secret-秘钥' -r m1.txt
    openssl dgst -sm3    -hmac 'test-secret-秘钥' -r m1.txt

Body hashes: ``printf '' | openssl dgst -sha256``, ``printf '%s' '{"operations":[]}' | openssl dgst -sha256``.
"""

from __future__ import annotations

import pytest

from regsync import settings
from regsync.registry import signing

SECRET = "test-secret-秘钥"  # UTF-8 key bytes, as the shell passed them to openssl
LONG_SECRET = "k" * 100  # longer than the 64-byte HMAC block: the key is hashed first (RFC 2104)

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
BATCH_BODY = b'{"operations":[]}'
BATCH_BODY_SHA256 = "ba008b3ff2e64fd0f721e62a4159d1068da4c3f8ca432bf40a0414c167013059"

# Query parameters as decoded, in the order sent; the canonical form is sorted by (name, value) of the
# percent-encoded pair (RFC 3986: space → %20, "/" → %2F, "*" → %2A, "~" kept, UTF-8 bytes encoded);
# "a" sorts before "a-b" (by name first, not by the joined "name=value" string).
QUERY_PARAMS = [
    ("name", "A"),
    ("limit", "2"),
    ("clientRef", "a b/c~"),
    ("name", "中"),
    ("a-b", "x"),
    ("a", "y*"),
]
CANONICAL_QUERY = "a=y%2A&a-b=x&clientRef=a%20b%2Fc~&limit=2&name=%E4%B8%AD&name=A"

MESSAGE_GET = (
    "GET\n/api/v1/changes\n" + CANONICAL_QUERY + "\n1764374400000\nabcDEF0123456789abcdef\n" + EMPTY_SHA256
)
MESSAGE_POST = "POST\n/api/v1/batch\n\n1764374400123\nNonce0123456789ABCDEFxyz\n" + BATCH_BODY_SHA256

VECTORS = [
    # (secret, message, method, expected hex from openssl)
    (SECRET, MESSAGE_GET, "HMAC-SHA256", "3435529b73ee1d4297a9183170111f24afd6d5333b43e24e1e7fe9bab8d389d1"),
    (SECRET, MESSAGE_GET, "HMAC-SM3", "ad470a05d785b1f7e27fc6d6bfddeb9f9309a29d9821b696da9fc8dda42f2ccb"),
    (SECRET, MESSAGE_POST, "HMAC-SHA256", "9fbb5deeee61c285dc8c5b7e15ff8c406e9fce74c53f0d5b665692e46e88e49a"),
    (SECRET, MESSAGE_POST, "HMAC-SM3", "0859099032cd0437792b141e31c6804c0adc7dbccdc2882b2b7143a518ee9f60"),
    (
        LONG_SECRET,
        MESSAGE_POST,
        "HMAC-SHA256",
        "c9ad799662e134d33f39f6f8c0ea30d69d5fc5f2359aeab0fcab64ee38067d67",
    ),
    (
        LONG_SECRET,
        MESSAGE_POST,
        "HMAC-SM3",
        "a42102bba9d64fc9cb3f4ede7241ffe5d21e7536f8970ec271c644421b843050",
    ),
]


def test_empty_body_hash_constant() -> None:
    assert signing.EMPTY_BODY_SHA256 == EMPTY_SHA256


def test_canonical_query_encodes_and_sorts() -> None:
    assert signing.canonical_query(QUERY_PARAMS) == CANONICAL_QUERY


def test_canonical_query_empty() -> None:
    assert signing.canonical_query([]) == ""


def test_string_to_sign_with_query_and_empty_body() -> None:
    msg = signing.string_to_sign(
        "get", "/api/v1/changes", CANONICAL_QUERY, "1764374400000", "abcDEF0123456789abcdef", b""
    )
    assert msg == MESSAGE_GET


def test_string_to_sign_with_body_and_no_query() -> None:
    msg = signing.string_to_sign(
        "POST", "/api/v1/batch", "", "1764374400123", "Nonce0123456789ABCDEFxyz", BATCH_BODY
    )
    assert msg == MESSAGE_POST


@pytest.mark.parametrize(("secret", "message", "method", "expected"), VECTORS)
def test_sign_matches_openssl(secret: str, message: str, method: str, expected: str) -> None:
    assert signing.sign(secret, message, method) == expected
    assert signing.verify(secret, message, method, expected.upper())


def test_sign_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown sign method"):
        signing.sign(SECRET, MESSAGE_GET, "HMAC-MD5")
    assert not signing.verify(SECRET, MESSAGE_GET, "HMAC-MD5", "00")


def test_verify_rejects_a_wrong_signature() -> None:
    assert not signing.verify(SECRET, MESSAGE_GET, "HMAC-SHA256", "0" * 64)


def test_nonce_alphabet_and_length() -> None:
    nonces = {signing.new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    for n in nonces:
        assert 16 <= len(n) <= 64 and n.isalnum() and n.isascii()


def test_sign_methods_are_the_settings_list() -> None:
    assert signing.SIGN_METHODS is settings.SIGN_METHODS
    for method in settings.SIGN_METHODS:
        assert signing.sign(SECRET, MESSAGE_GET, method)
