"""Opening checks and schema migrations of a SQLite store.

Migrations are the numbered files `parkcard/store/migrations/sqlite/NNNN_<name>.sql`,
shipped in the wheel as package data. File NNNN leaves the database at
`PRAGMA user_version` NNNN; each runs in a transaction of its own, so a file
stops at the last migration that completed.
"""

import importlib.resources
import re
import sqlite3

from parkcard.store.errors import RESTORE_ADVICE, DatabaseDamaged, is_transient, schema_problem

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files():
    """Return [(number, name, sql)] of the SQLite migrations, in order: 1, 2, 3 ... with none missing (a number
    is the schema version it makes, the same on both backends)."""
    folder = importlib.resources.files("parkcard.store") / "migrations" / "sqlite"
    found = sorted((int(m.group(1)), entry.name) for entry in folder.iterdir() if (m := _NAME.match(entry.name)))
    if [n for n, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("the SQLite migrations of this parkcard install are not numbered 1, 2, 3 ... once each "
                           "with none missing: %s; reinstall parkcard" % [name for _, name in found])
    return [(n, name, (folder / name).read_text(encoding="utf-8")) for n, name in found]


_FILES = migration_files()
MIGRATIONS = tuple(sql for _n, _name, sql in _FILES)
MIGRATION_NUMBERS = tuple(n for n, _name, _sql in _FILES)     # MIGRATIONS[i] is migration MIGRATION_NUMBERS[i]
LATEST = MIGRATION_NUMBERS[-1]


def quick_check(conn, path):
    """Refuse a file whose pages fail PRAGMA quick_check (O(N) in the file's size: run once, at open)."""
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.DatabaseError as exc:
        if is_transient(exc):
            raise
        problems = [str(exc)]
    if problems != ["ok"]:
        raise DatabaseDamaged("%s is damaged (%s): %s" % (path, "; ".join(problems[:3]), RESTORE_ADVICE))


def schema_version(conn):
    """Return PRAGMA user_version: the number of the last migration applied."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn, upto=None):
    """Apply every migration newer than the database's user_version, up to `upto` (LATEST); return the version."""
    upto = LATEST if upto is None else upto
    current = schema_version(conn)
    problem = schema_problem(current, LATEST)
    if problem is not None:
        raise DatabaseDamaged(problem)
    for number, sql in zip(MIGRATION_NUMBERS, MIGRATIONS):
        if not current < number <= upto:
            continue
        try:
            conn.executescript("BEGIN IMMEDIATE;\n%s;\nPRAGMA user_version = %d;\nCOMMIT;" % (sql, number))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return max(current, upto)
