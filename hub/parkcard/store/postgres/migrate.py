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
    """Return the migration files in order: 0001, 0002, 0003 ... with none missing (the same numbers as SQLite's);
    the last one's number is the schema version this hub writes."""
    files = sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    if [int(path.name[:4]) for path in files] != list(range(1, len(files) + 1)):
        raise RuntimeError("the PostgreSQL migrations are not numbered 0001, 0002 ... once each with none missing: %s"
                           % [path.name for path in files])
    return files


def latest_version():
    """The schema version this hub writes: the highest migration number."""
    return int(migration_files()[-1].name[:4])


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
        latest = latest_version()
        problem = schema_problem(current, latest)
        if problem is not None:
            raise DatabaseDamaged(problem)
        # IF NOT EXISTS: a first open may have stopped after this, before migration 1 committed.
        await conn.execute("CREATE TABLE IF NOT EXISTS parkcard_schema(id BIGINT PRIMARY KEY CHECK (id = 1), "
                           "version BIGINT NOT NULL CHECK (version >= 0))")
        await conn.execute("INSERT INTO parkcard_schema VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
    for path in files:
        number = int(path.name[:4])
        if number <= current:
            continue
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK_KEY)
            if await conn.fetchval("SELECT version FROM parkcard_schema") >= number:
                continue        # another process applied it meanwhile
            sql = path.read_text()
            if any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines()):
                await conn.execute(sql)     # a file of comments only (a number held for later) has nothing to run
            await conn.execute("UPDATE parkcard_schema SET version = $1", number)
    return latest
