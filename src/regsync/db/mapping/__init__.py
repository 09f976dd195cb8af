"""A province's platform tables, declared (issue 14): the mapping file, its values both ways, and its SQL.

- :mod:`regsync.db.mapping.model`: the file's shape (pydantic), the canonical fields of each kind.
- :mod:`regsync.db.mapping.load`: reading a mapping (a path or a shipped name), errors naming file and key.
- :mod:`regsync.db.mapping.codec`: platform values ↔ canonical values in Python, by field and by row.
- :mod:`regsync.db.mapping.sql`: the same reads as SQL expressions per dialect, for views and triggers.
"""
