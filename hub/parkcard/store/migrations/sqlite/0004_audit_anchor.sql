-- 4: the head of the operator audit log (<db>.audit.log, parkcard.oplog), moved in the same
-- transaction as the change each entry records, so a cut, swapped or extended log is detected.
CREATE TABLE audit_anchor(
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL CHECK (seq >= 0), hash TEXT NOT NULL,
    at REAL NOT NULL);
