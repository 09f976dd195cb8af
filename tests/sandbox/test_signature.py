"""The client's signer and the sandbox's check agree with fixed vectors computed independently (registry-api.md §2).

The two share no code (``regsync.registry.signing`` signs, ``regsync.sandbox.signature`` checks). Each vector is
a request as it goes on the wire; its string to sign was written by hand from §2 and signed with OpenSSL 3.0.19::

    printf '%s\\n%s\\n%s\\n%s\\n%s\\n%s' GET /api/v1/changes \\
        'cursor=a%20b%2Bc%2F%E4%B8%AD~&kind=org&kind=volunteer&limit=50' 1764374400000 \\
        Vector0123456789nonceABC e3b0c442…7852b855 > get.txt
    printf '%s\\n%s\\n%s\\n%s\\n%s\\n%s' POST /api/v1/batch '' 1764374400123 zyxZYX9876543210nonce \\
        1f436cac…cc6a7ff7 > post.txt
    openssl dgst -sha256 -hmac 'sbx-secret-秘钥' -r get.txt      # and -sm3; and -hmac "$(printf 'k%.0s' {1..100})"

Body hashes: ``printf '' | openssl dgst -sha256`` and ``printf '%s' "$BODY" | openssl dgst -sha256``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from regsync.registry import signing
from regsync.registry.client import RegistryClient
from regsync.sandbox import signature
from regsync.sandbox.server import SandboxServer
from regsync.settings import RegistrySettings

BASE = "https://registry.test/api/v1"
SECRET = "sbx-secret-秘钥"
LONG_SECRET = "k" * 100  # longer than the 64-byte block of both hashes: the key is hashed first (RFC 2104)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
BODY = b'{"operations":[{"op":"delete","type":"volunteer","id":"V00000001"}]}'
BODY_SHA256 = "1f436cac776b821341437034408a4483db27b9029d49581cd08f1058cc6a7ff7"


@dataclass(frozen=True)
class Wire:
    """One request as the client sends it and the sandbox receives it."""

    method: str
    path: str  # below the base URL, as the client is asked for it
    params: tuple[tuple[str, str], ...]  # decoded, in the order the client is given them
    raw_path: bytes  # as sent
    raw_query: bytes  # as sent: httpx writes a space as "+" and "+" as %2B
    timestamp_ms: int
    nonce: str
    body: bytes
    message: str  # the string to sign, written by hand from §2


GET = Wire(
    "GET",
    "/changes",
    (("cursor", "a b+c/中~"), ("limit", "50"), ("kind", "volunteer"), ("kind", "org")),
    b"/api/v1/changes",
    b"cursor=a+b%2Bc%2F%E4%B8%AD~&limit=50&kind=volunteer&kind=org",
    1764374400000,
    "Vector0123456789nonceABC",
    b"",
    # sorted by encoded name then value; a space is %20, "+" %2B, "/" %2F, "~" kept, UTF-8 bytes encoded
    "GET\n/api/v1/changes\ncursor=a%20b%2Bc%2F%E4%B8%AD~&kind=org&kind=volunteer&limit=50\n1764374400000\n"
    "Vector0123456789nonceABC\n" + EMPTY_SHA256,
)
POST = Wire(
    "POST",
    "/batch",
    (),
    b"/api/v1/batch",
    b"",
    1764374400123,
    "zyxZYX9876543210nonce",
    BODY,
    "POST\n/api/v1/batch\n\n1764374400123\nzyxZYX9876543210nonce\n" + BODY_SHA256,
)

VECTORS = [
    # (request, secret, method, hex from openssl)
    (GET, SECRET, "HMAC-SHA256", "b59f52b60ef69b06545fcbb8a185be4413f13795e42826e95897586f94a4983e"),
    (GET, SECRET, "HMAC-SM3", "ab0de51fe943ada01a03e68bdbb1c3f95e34e0bb23e527ea1da735d7b5eed04d"),
    (GET, LONG_SECRET, "HMAC-SHA256", "31184b648277ce4a3badcbbeed19053f7af9648a1773bf7b6dbb6375f6f82457"),
    (GET, LONG_SECRET, "HMAC-SM3", "026a7fecc754b6b5575f8b234c92e23fdecaded43abc0703ff3d22aef459f3b4"),
    (POST, SECRET, "HMAC-SHA256", "0ec91be286d88fab28a9237205c0ddd23a3bf79b52a6ebff81c9068adfe6c8ae"),
    (POST, SECRET, "HMAC-SM3", "762943e7d575fcdac8de31f32ec60606cc9a4b810066d88a6235b505d27d25cf"),
    (POST, LONG_SECRET, "HMAC-SHA256", "f2db802263e591e8042e3ccaa8c1be97a3b91d16bfb4cfd089bad69670f9c12b"),
    (POST, LONG_SECRET, "HMAC-SM3", "f6d7c06073347e3395f2052ec58952d6df6f82d2e5df9867f5e799fc3728243c"),
]
IDS = [f"{w.method}-{'long' if s == LONG_SECRET else 'short'}-{m}" for w, s, m, _ in VECTORS]


def client_signed(wire: Wire, secret: str, method: str, monkeypatch: pytest.MonkeyPatch) -> httpx.Request:
    """The request as the registry client signs it, at the vector's time and with the vector's nonce."""
    monkeypatch.setattr(signing, "new_nonce", lambda length=32: wire.nonce)
    settings = RegistrySettings(url=BASE, client_id="prov-23", client_secret=secret, sign_method=method)
    client = RegistryClient(
        settings,
        province="23",
        transport=httpx.MockTransport(lambda request: httpx.Response(500)),
        clock=lambda: wire.timestamp_ms / 1000,
    )
    try:
        request = httpx.Request(wire.method, BASE + wire.path, params=wire.params or None, content=wire.body or None)
        client.sign(request, wire.body)
    finally:
        client.close()
    return request


@pytest.mark.parametrize(("wire", "secret", "method", "expected"), VECTORS, ids=IDS)
def test_the_client_signs_as_the_vectors_say(
    wire: Wire, secret: str, method: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = client_signed(wire, secret, method, monkeypatch)
    raw_path, _, raw_query = request.url.raw_path.partition(b"?")
    assert (raw_path, raw_query, request.content) == (wire.raw_path, wire.raw_query, wire.body)
    assert request.headers["X-Timestamp"] == str(wire.timestamp_ms)
    assert request.headers["X-Nonce"] == wire.nonce
    assert request.headers["X-Sign-Method"] == method
    assert request.headers["X-Signature"] == expected


@pytest.mark.parametrize(("wire", "secret", "method", "expected"), VECTORS, ids=IDS)
def test_the_sandbox_checks_as_the_vectors_say(wire: Wire, secret: str, method: str, expected: str) -> None:
    message = signature.string_to_sign(
        wire.method, wire.raw_path, wire.raw_query, str(wire.timestamp_ms), wire.nonce, wire.body
    )
    assert message == wire.message
    assert signature.expected_signature(secret, message, method) == expected
    assert signature.signature_matches(secret, message, method, expected)
    other = "HMAC-SM3" if method == "HMAC-SHA256" else "HMAC-SHA256"
    assert not signature.signature_matches(secret, message, other, expected)
    assert not signature.signature_matches(secret + "x", message, method, expected)
    assert not signature.signature_matches(secret, message.replace("\n", "\n ", 1), method, expected)


@pytest.mark.parametrize(("wire", "secret", "method", "expected"), VECTORS, ids=IDS)
def test_what_the_client_sends_the_sandbox_accepts(
    wire: Wire, secret: str, method: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = client_signed(wire, secret, method, monkeypatch)
    raw_path, _, raw_query = request.url.raw_path.partition(b"?")
    h = request.headers
    message = signature.string_to_sign(request.method, raw_path, raw_query, h["X-Timestamp"], h["X-Nonce"],
                                       request.content)
    assert signature.signature_matches(secret, message, h["X-Sign-Method"], h["X-Signature"])


def test_the_canonical_query_of_a_raw_query() -> None:
    assert signature.canonical_query(b"") == ""
    assert signature.canonical_query(b"b=2&a=1&a=") == "a=&a=1&b=2"
    assert signature.canonical_query(b"flag") == "flag="
    # "a" sorts before "a-b" (by name first, not by the joined "name=value" string); encoded before sorting
    assert signature.canonical_query(b"name=A&a-b=x&a=y*&name=%E4%B8%AD") == "a=y%2A&a-b=x&name=%E4%B8%AD&name=A"


def test_an_unknown_method_never_matches() -> None:
    with pytest.raises(ValueError, match="unknown signature method"):
        signature.expected_signature(SECRET, POST.message, "HMAC-MD5")
    assert not signature.signature_matches(SECRET, POST.message, "HMAC-MD5", "00")


# -- where the two disagreed: the stricter reading wins -------------------------------------------------------
# The client writes the signature as §2 says (lowercase hex) and the timestamp in ASCII digits; the sandbox's
# check accepted an upper-case signature (the shared check lowered it) and failed with a 500 on a signature, or
# on a signed timestamp, with characters outside ASCII. It now refuses all three as SIGNATURE_INVALID.


def test_only_a_lowercase_hex_signature_matches() -> None:
    expected = VECTORS[0][3]
    assert signature.signature_matches(SECRET, GET.message, "HMAC-SHA256", expected)
    assert not signature.signature_matches(SECRET, GET.message, "HMAC-SHA256", expected.upper())
    assert not signature.signature_matches(SECRET, GET.message, "HMAC-SHA256", "é" * 64)
    assert not signature.signature_matches(SECRET, GET.message, "HMAC-SHA256", "")


def test_the_sandbox_refuses_an_upper_case_signature(env: Any) -> None:
    assert env.api.call("GET", "/changes").status_code == 200
    h = env.api.signed_headers("GET", "/api/v1/changes", [], b"")
    h["X-Signature"] = h["X-Signature"].upper()
    r = env.http.get("/api/v1/changes", headers=h)
    assert r.status_code == 401 and r.json()["code"] == "SIGNATURE_INVALID"


def test_the_sandbox_refuses_a_signature_not_in_ascii(env: Any) -> None:
    h = env.api.signed_headers("GET", "/api/v1/changes", [], b"")
    r = env.http.get("/api/v1/changes", headers={**h, "X-Signature": ("é" * 64).encode()})
    assert r.status_code == 401 and r.json()["code"] == "SIGNATURE_INVALID"


def test_the_sandbox_refuses_a_signed_timestamp_of_digits_not_in_ascii() -> None:
    # b"\xb2" is "²" in Latin-1, a digit to str.isdigit() but not to int(): sent raw, over real HTTP
    with SandboxServer() as sbx, httpx.Client(base_url=sbx.base_url.removesuffix("/api/v1")) as http:
        token = http.post("/api/v1/oauth/token", data={"grant_type": "client_credentials",
                                                        "client_id": sbx.client_id,
                                                        "client_secret": sbx.client_secret}).json()["access_token"]
        timestamp = "²" + str(int(time.time() * 1000))[1:]
        message = "\n".join(["GET", "/api/v1/changes", "", timestamp, "abcdefABCDEF0123456789", EMPTY_SHA256])
        sig = hmac.new(sbx.client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        headers = [(b"Authorization", f"Bearer {token}".encode()), (b"X-Client-Id", sbx.client_id.encode()),
                   (b"X-Timestamp", timestamp.encode("latin-1")), (b"X-Nonce", b"abcdefABCDEF0123456789"),
                   (b"X-Sign-Method", b"HMAC-SHA256"), (b"X-Signature", sig.encode())]
        r = http.get("/api/v1/changes", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "SIGNATURE_INVALID"
