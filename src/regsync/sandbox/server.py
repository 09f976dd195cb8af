"""Run the sandbox registry on loopback: in a background thread, or in a child process.

:class:`SandboxServer` is what the demo, the tests and the benchmarks use::

    with SandboxServer() as sandbox:
        client = RegistryClient(sandbox.base_url, sandbox.client_id, sandbox.client_secret)

In ``subprocess=True`` mode it runs ``python -m regsync.sandbox serve …`` so that the registry does not share
the caller's GIL (the benchmark wants the client and the server on separate cores).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess as sp
import sys
import threading
import time
from types import TracebackType
from typing import Any

import httpx

from regsync.sandbox.app import create_app
from regsync.sandbox.faults import format_fault_spec, normalize_faults
from regsync.sandbox.store import ClientCredential
from regsync.settings import SIGN_METHODS


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def new_client(province: str = "23") -> ClientCredential:
    """A client with a random id and secret for ``province``."""
    return ClientCredential(f"prov{province}-{secrets.token_hex(4)}", secrets.token_urlsafe(24), province)


class SandboxServer:
    """The sandbox registry served by uvicorn on loopback.

    Args:
        db_url: the sandbox database (default ``sqlite://``: a throw-away file).
        clients: credentials to serve; default one random client of province 23 (:attr:`client_id`,
            :attr:`client_secret` are the first client's).
        host: the address to listen on.
        port: the port (0: a free one).
        admin: serve the ``/_sandbox/`` admin endpoints.
        subprocess: run in a child process instead of a thread of this one.
        rate_limit_rps: requests per second per client (registry-api.md §3).
        rate_limit_burst: the token bucket's size.
        faults: initial faults (registry-api.md §8): a dict of
            :data:`~regsync.sandbox.faults.FAULT_NAMES` with string or numeric values, e.g.
            ``{"lost_answer_rate": "0.2"}``; checked here, passed to the child as ``--faults NAME=VALUE,…``.
        seed: seeds the one RNG of every fault draw.
        sign_methods: the accepted signature methods.
        startup_timeout_s: seconds to wait for the server to answer.

    Raises:
        ValueError: an unknown fault name or a bad fault value.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/api/v1``, the client's base URL.
        admin_url: ``http://127.0.0.1:PORT/_sandbox``.
    """

    def __init__(
        self,
        db_url: str = "sqlite://",
        clients: list[ClientCredential] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin: bool = True,
        subprocess: bool = False,
        rate_limit_rps: float = 20,
        rate_limit_burst: int = 40,
        faults: dict[str, Any] | None = None,
        seed: int | None = None,
        sign_methods: tuple[str, ...] = SIGN_METHODS,
        startup_timeout_s: float = 20.0,
    ) -> None:
        self.db_url = db_url
        self.clients = list(clients) if clients else [new_client("23")]
        self.host = host
        self.port = port or free_port(host)
        self.admin = admin
        self.subprocess = subprocess
        self.rate_limit_rps = rate_limit_rps
        self.rate_limit_burst = rate_limit_burst
        self.faults = normalize_faults(faults) if faults else None
        self.seed = seed
        self.sign_methods = sign_methods
        self.startup_timeout_s = startup_timeout_s
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._proc: sp.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The client's base URL."""
        return f"http://{self.host}:{self.port}/api/v1"

    @property
    def admin_url(self) -> str:
        """The admin router's URL."""
        return f"http://{self.host}:{self.port}/_sandbox"

    @property
    def client_id(self) -> str:
        """The first client's id."""
        return self.clients[0].client_id

    @property
    def client_secret(self) -> str:
        """The first client's secret."""
        return self.clients[0].client_secret

    @property
    def pid(self) -> int | None:
        """The serving child process's id (``subprocess=True`` mode, once started), else ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def app(self) -> Any:
        """The Starlette app (thread mode only)."""
        return self._server.config.app if self._server else None

    def start(self) -> SandboxServer:
        """Start serving and wait until the server answers.

        Raises:
            RuntimeError: it did not answer within ``startup_timeout_s``.
        """
        if self.subprocess:
            self._start_process()
        else:
            self._start_thread()
        self._wait_ready()
        return self

    def _start_thread(self) -> None:
        import uvicorn  # start-up cost: only a sandbox run in this process needs the server

        app = create_app(
            self.db_url,
            self.clients,
            admin=self.admin,
            rate_limit_rps=self.rate_limit_rps,
            rate_limit_burst=self.rate_limit_burst,
            faults=self.faults,
            seed=self.seed,
            sign_methods=self.sign_methods,
        )
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
            date_header=False,  # the app sends Date on the registry's (possibly offset) clock
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sandbox-registry", daemon=True)
        self._thread.start()

    def _start_process(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "regsync.sandbox",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--db",
            self.db_url,
            "--rate-limit-rps",
            str(self.rate_limit_rps),
            "--rate-limit-burst",
            str(self.rate_limit_burst),
            "--admin" if self.admin else "--no-admin",
            "--quiet",
        ]
        for c in self.clients:
            cmd += ["--client", f"{c.client_id}:{c.client_secret}:{c.province}"]
        if self.faults:
            cmd += ["--faults", format_fault_spec(self.faults)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        if tuple(self.sign_methods) == ("HMAC-SM3",):
            cmd += ["--sign-method-only", "HMAC-SM3"]
        self._proc = sp.Popen(  # noqa: S603 - our own interpreter and module
            cmd, env=dict(os.environ), stdin=sp.DEVNULL
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/oauth/token"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"the sandbox process exited with {self._proc.returncode}")
            try:
                # a sandbox started with a latency fault answers the probe that late: wait longer than that
                httpx.post(url, data={"grant_type": "client_credentials"}, timeout=max(1.0, self.startup_timeout_s / 4))
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the sandbox did not answer on {self.base_url} within {self.startup_timeout_s} s")

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            self._thread = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except sp.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
