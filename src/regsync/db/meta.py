"""Facts about the store itself, kept in ``store_meta`` (name → value).

``store_id``: a random identifier made once per store (a database, with its regsync tables). It tells this
store's writes from another store's under the same registry credentials: it is part of every idempotency key the
relay derives (design.md, flow 1: "a lost answer is never a duplicate"), so that a second store holding the same
records never has the registry replay the first store's answers as its own (issue 12, item 4). A backup restored
into place keeps it (it is the same store); a copy made to run as another store should be given a new one
(``DELETE FROM store_meta WHERE name = 'store_id'`` on the copy before its first sync).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from regsync.db.models import StoreMeta
from regsync.db.session import utcnow

STORE_ID_NAME = "store_id"


def store_id(engine: Engine) -> str:
    """This store's identifier, made on first use.

    Returns:
        32 hexadecimal characters (a UUID4 without dashes), the same for every process of this store.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the store cannot be read or written (no ``store_meta`` table: run
            ``regsync db upgrade``).
    """
    t = StoreMeta.__table__
    query = select(t.c.value).where(t.c.name == STORE_ID_NAME)
    with engine.connect() as conn:
        found = conn.execute(query).scalar_one_or_none()
    if found is not None:
        return str(found)
    try:
        with engine.begin() as conn:
            conn.execute(t.insert().values(name=STORE_ID_NAME, value=uuid.uuid4().hex, updated_at=utcnow()))
    except IntegrityError:
        pass  # another process made it first: theirs stands
    with engine.connect() as conn:
        return str(conn.execute(query).scalar_one())
