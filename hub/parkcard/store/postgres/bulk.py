"""A batch's writes as one statement: each table's rows as one array per column, unnest()ed into data-modifying
WITH clauses.

One round trip for every append and upsert of a batch, whatever the number of
tables and rows; the statement's text depends only on which tables have rows,
so asyncpg's statement cache keeps its plan. Foreign keys between the tables
(a posting's record, an entry's posting) are checked at the end of the
statement, when all of its rows are in.
"""

# Column types of the terminals columns a batch may set that are not BIGINT (migrations/postgres/0001_core.sql).
TERMINAL_TYPES = {"last_seen": "float8", "status_at": "float8", "firmware": "text", "name": "text",
                  "broker_password": "text", "key": "bytea"}


class BulkStatement:
    """Many INSERTs and UPDATEs collected into one statement; run it with conn.execute(bulk.sql(), *bulk.args)."""

    def __init__(self):
        self.parts = []
        self.args = []

    def __bool__(self):
        return bool(self.parts)

    def _arrays(self, rows, types):
        marks = []
        for column, pg_type in zip(zip(*rows), types):
            self.args.append(list(column))
            marks.append("$%d::%s[]" % (len(self.args), pg_type))
        return ", ".join(marks)

    def insert(self, table, columns, types, rows, on_conflict=""):
        """Add rows (tuples in the order of columns) to table; on_conflict: an ON CONFLICT clause."""
        if rows:
            self.parts.append("INSERT INTO %s(%s) SELECT * FROM unnest(%s) %s" % (
                table, ", ".join(columns), self._arrays(rows, types), on_conflict))

    def update(self, table, columns, types, rows):
        """Set columns of the rows whose id is each row's first value (id, *values); one row per id."""
        if rows:
            self.parts.append("UPDATE %s t SET %s FROM unnest(%s) v(id, %s) WHERE t.id = v.id" % (
                table, ", ".join("%s = v.%s" % (c, c) for c in columns), self._arrays(rows, ("bigint", *types)),
                ", ".join(columns)))

    def sql(self):
        """The statement (its parameters are self.args)."""
        return "WITH %s SELECT 1" % ", ".join("w%d AS (%s)" % (i, part) for i, part in enumerate(self.parts))
