"""The sandbox registry (沙箱): an honest, strict stand-in for the national registry (registry-api.md §8).

Public surface: :func:`create_app` (the ASGI app), :class:`SandboxServer` (run it on loopback, in a thread
or a child process), :class:`ClientCredential`, :class:`Faults`.
"""

from regsync.sandbox.app import create_app
from regsync.sandbox.faults import Faults
from regsync.sandbox.server import SandboxServer
from regsync.sandbox.store import ClientCredential

__all__ = ["ClientCredential", "Faults", "SandboxServer", "create_app"]
