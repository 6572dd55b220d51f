"""Reading a hub database in tests through the store's named reads, never its SQL.

`read(db, fn)` opens the store for reading only (no migration, nothing written),
awaits fn(store) and closes it; it works from plain tests and from inside a
running event loop (the read then runs on a loop of its own in a worker thread).
The small helpers below are the reads tests make most.
"""

import asyncio
import concurrent.futures

from parkcard.store import store_for


def read(db, fn):
    """Return await fn(store) on the database at db, opened for reading only."""
    async def go():
        store = await store_for(db).open_for_audit()
        try:
            return await fn(store)
        finally:
            await store.close()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(go())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def damage_a_page(db):
    """Write garbage over the page of the records_card index of a SQLite file (checkpointed first)."""
    import sqlite3
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'records_card'").fetchone()[0]
    with open(db, "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(bytes(range(256)) * (page_size // 256))


def alarms(db):
    """Every rows.Alarm, by id."""
    return read(db, lambda s: s.alarms())


def quarantined(db):
    """Every rows.Quarantined, by id."""
    return read(db, lambda s: s.quarantined())


def records(db, terminal_id=None):
    """The rows.StoredRecord of a terminal (or all), by terminal and seq."""
    return read(db, lambda s: s.records(terminal_id))


def statuses(db, terminal_id):
    """[(seq, status)] of a terminal's records, by seq."""
    return [(r.seq, r.status) for r in records(db, terminal_id)]


def terminal(db, terminal_id):
    """The rows.Terminal of a terminal (IndexError when it is not registered)."""
    return read(db, lambda s: s.terminals(terminal_id))[0]


def counts(db):
    """rows.StoreCounts of the database."""
    return read(db, lambda s: s.counts())
