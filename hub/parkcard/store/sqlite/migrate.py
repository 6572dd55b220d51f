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
    """Return [(number, name, sql)] of the SQLite migrations, in order, one per number 1, 2, 3 ...

    A number no file holds is kept for a migration numbered ahead of it: it is a step that changes
    nothing (name None, sql ""), so the numbers stay the schema versions on both backends.
    """
    folder = importlib.resources.files("parkcard.store") / "migrations" / "sqlite"
    found = sorted((int(m.group(1)), entry.name) for entry in folder.iterdir() if (m := _NAME.match(entry.name)))
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers) or (numbers and numbers[0] != 1):
        raise RuntimeError("the SQLite migrations of this parkcard install are not numbered 1, 2, 3 ... once each: "
                           "%s; reinstall parkcard" % [name for _, name in found])
    names = dict(found)
    return [(n, names.get(n), (folder / names[n]).read_text(encoding="utf-8") if n in names else "")
            for n in range(1, (numbers[-1] if numbers else 0) + 1)]


MIGRATIONS = tuple(sql for _n, _name, sql in migration_files())
LATEST = len(MIGRATIONS)


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
    for number in range(current + 1, upto + 1):
        try:
            conn.executescript("BEGIN IMMEDIATE;\n%s;\nPRAGMA user_version = %d;\nCOMMIT;"
                               % (MIGRATIONS[number - 1], number))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return max(current, upto)
