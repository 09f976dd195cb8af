"""The platform's records (the five kinds) as the flows see them: every read and write of the platform's own tables.

The flows never spell a platform table or column; they call this interface, named for what it does. Today's
reference tables (:mod:`regsync.db.models`) are its first implementation; a province's existing tables, through
a declared mapping, are the next.

- :mod:`regsync.db.platform.read`: rows loaded by local id, the unlinked rows of a record by its natural key (for
  linking), the raw forms of an ID number.
- :mod:`regsync.db.platform.write`: registry changes written into local records without echo (merged fields,
  endings), records created in the registry inserted.
- :mod:`regsync.db.platform.scan`: the keyset pages the reconcile, adopt and resync compare, and a resync's scope.
- :mod:`regsync.db.platform.totals`: sums per person and per org (hours, ID numbers held by two rows).

Not yet here (the mapping issue moves them): the relay's and the outbox triggers' joins of the platform's tables
(``db.outbox.queue_dependents``, ``db.links.live_membership_links``), the seeder's and the demo's reads
(``db.seeding``, ``db.agreement``).
"""
