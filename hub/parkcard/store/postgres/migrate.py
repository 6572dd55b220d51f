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


def migration_files():
    """Return the migration files by number - 1 up to the newest (None for a number without a file, a step that
    changes nothing); their count is the schema version this hub writes."""
    files = sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    numbers = [int(path.name[:4]) for path in files]
    if not numbers or numbers[0] != 1 or len(set(numbers)) != len(numbers):
        raise RuntimeError("the migrations %s do not start at 0001 or repeat a number" % [p.name for p in files])
    by_number = dict(zip(numbers, files))
    return [by_number.get(n) for n in range(1, numbers[-1] + 1)]


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
            if files[number - 1] is not None:
                await conn.execute(files[number - 1].read_text())
            await conn.execute("UPDATE parkcard_schema SET version = $1", number)
    return len(files)
