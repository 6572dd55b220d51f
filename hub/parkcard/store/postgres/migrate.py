"""Numbered migrations for PostgreSQL: store/migrations/postgres/NNNN_*.sql, one transaction each.

The table parkcard_schema holds the number of the last one applied (SQLite's
PRAGMA user_version). The numbers match SQLite's migrations one for one, so a
schema version means the same tables on both backends.
"""

from pathlib import Path

from parkcard.store.errors import DatabaseDamaged, schema_problem

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "postgres"
# Serialises two processes opening a fresh database at once (pg_advisory_xact_lock's key).
MIGRATE_LOCK_KEY = 0x70617263_6d696772   # "parcmigr"


class _Unnumbered:
    """A number no migration file holds (kept for one numbered ahead of it): a step that changes nothing."""

    def __init__(self, number):
        self.name = "%04d (none)" % number

    def read_text(self):
        """The step's SQL: nothing to do."""
        return "SELECT 1"


def migration_files():
    """Return the migrations in order, one per number 1, 2, 3 ...; their count is the schema version this hub
    writes (a number without a file is an _Unnumbered step)."""
    files = sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    by_number = {}
    for path in files:
        number = int(path.name[:4])
        if number < 1 or number in by_number:
            raise RuntimeError("migration %s is out of sequence (each number 0001, 0002 ... once)" % path.name)
        by_number[number] = path
    return [by_number.get(n) or _Unnumbered(n) for n in range(1, max(by_number, default=0) + 1)]


async def schema_version(conn):
    """Return the database's schema version: 0 for an empty database, -1 for tables that are not ParkCard's."""
    has_table = await conn.fetchval("SELECT to_regclass('parkcard_schema') IS NOT NULL")
    if has_table:
        return await conn.fetchval("SELECT COALESCE(MAX(version), -1) FROM parkcard_schema")
    others = await conn.fetchval("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()")
    return -1 if others else 0


async def migrate(conn, where):
    """Apply every migration newer than the database's version; raise DatabaseDamaged for one this hub cannot use."""
    files = migration_files()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK_KEY)
        current = await schema_version(conn)
        if current < 0 and not await conn.fetchval("SELECT to_regclass('parkcard_schema') IS NOT NULL"):
            raise DatabaseDamaged("%s holds tables but no ParkCard schema version: give an empty database or "
                                  "a ParkCard one" % where)
        problem = schema_problem(current, len(files))
        if problem is not None:
            raise DatabaseDamaged(problem)
        # IF NOT EXISTS: a first open may have stopped after this, before migration 1 committed.
        await conn.execute("CREATE TABLE IF NOT EXISTS parkcard_schema(id BIGINT PRIMARY KEY CHECK (id = 1), "
                           "version BIGINT NOT NULL CHECK (version >= 0))")
        await conn.execute("INSERT INTO parkcard_schema VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
    for number in range(current + 1, len(files) + 1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK_KEY)
            if await conn.fetchval("SELECT version FROM parkcard_schema") >= number:
                continue        # another process applied it meanwhile
            await conn.execute(files[number - 1].read_text())
            await conn.execute("UPDATE parkcard_schema SET version = $1", number)
    return len(files)
