"""A client of the sandbox's admin endpoints (registry-api.md §8), for the demo, the tests and the benchmarks: it
speaks HTTP to a running sandbox and touches no store (the portal's actions themselves are
:mod:`regsync.sandbox.portal`'s, run by the sandbox)."""

from __future__ import annotations

from typing import Any

import httpx


def trigger_activity(
    admin_url: str,
    count: int,
    seed: int | None = None,
    mix: dict[str, float] | None = None,
    duplicate_of_local: list[dict[str, Any]] | None = None,
    *,
    province: str = "23",
    duplicate_rate: float | None = None,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Make ``count`` random portal-side actions in a running sandbox (registry-api.md §8).

    Calls ``POST {admin_url}/portal/activity`` (the sandbox must serve its admin endpoints, on loopback).
    For the demo's ``regsync demo --portal-activity N``::

        with SandboxServer() as sandbox:
            ...
            result = trigger_activity(sandbox.admin_url, 50, seed=7)
            print(result["applied"])

    Args:
        admin_url: the sandbox's admin base, ``http://127.0.0.1:PORT/_sandbox``
            (:attr:`~regsync.sandbox.server.SandboxServer.admin_url`).
        count: how many actions (0 to 10 000).
        seed: seeds the draws: the same seed over the same records makes the same actions.
        mix: weights by action (``self_registration``, ``contact_edit``, ``identity_correction``,
            ``transfer_out``, ``deregistration``, ``org_dissolution``, ``service_record``); replaces
            :data:`regsync.sandbox.portal.DEFAULT_MIX` (actions left out are not drawn).
        duplicate_of_local: people the platform has, ``[{"idType", "idNumber", "name"}, …]``: some
            self-registrations are of them, so a later create of such a person by the client answers 409
            ``DUPLICATE_ID_NUMBER`` (§4.2).
        province: the province whose records the actions touch.
        duplicate_rate: the share of self-registrations that take one of ``duplicate_of_local`` (default
            0.5 on the sandbox's side).
        timeout_s: the HTTP timeout.

    Returns:
        The answer's ``data``: ``{"applied": {action: count}, "skipped": {…}, "records": [{"action",
        "type", "id"}, …], "province", "seed"}``.

    Raises:
        RuntimeError: the sandbox refused the call (the message carries its answer).
        httpx.HTTPError: the sandbox could not be reached.
    """
    body: dict[str, Any] = {"count": count, "province": province}
    if seed is not None:
        body["seed"] = seed
    if mix is not None:
        body["mix"] = mix
    if duplicate_of_local:
        body["duplicate_of_local"] = duplicate_of_local
    if duplicate_rate is not None:
        body["duplicate_rate"] = duplicate_rate
    r = httpx.post(f"{admin_url.rstrip('/')}/portal/activity", json=body, timeout=timeout_s)
    if r.status_code != 200:
        raise RuntimeError(f"portal activity refused: HTTP {r.status_code} {r.text[:500]}")
    data: dict[str, Any] = r.json()["data"]
    return data
