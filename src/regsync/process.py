"""Settings of regsync's own processes (the CLI's commands, the daemon, the sandbox registry)."""

from __future__ import annotations

import gc

#: Allocations (less deallocations) between two collections of the youngest generation; CPython's default is 700.
YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for batch work, once at start-up.

    A batch of 500 records keeps tens of thousands of young containers (rows, dicts, operations, results)
    alive to its end. At CPython's default threshold (700) that is a dozen or more collections per batch, each
    traversing every young object that survives, and the older generations in turn over everything the start-up
    made (modules, SQLAlchemy's tables, the settings), which never becomes garbage. So the start-up's objects are
    frozen (``gc.freeze``: never traversed again) and the youngest generation is collected every
    :data:`YOUNG_THRESHOLD` allocations. Nothing is left uncollected: reference counting frees all acyclic
    garbage at once, as always, and cycles are still found, later.

    Measured: the sandbox registry spent some 8 ms of a ~55 ms batch of 500 creates in collections
    (``bench/sandbox_batch.py``).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
