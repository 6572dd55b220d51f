-- Records applied after they were stored (an uncertain record its card's counters settled as happened, or any
-- later path that makes a record applied): each such change is logged here by the database itself, so the
-- webhook sender (parkcard.webhooks) sees it whatever path applied the record; each webhook keeps how far it
-- has read this log. A record stored applied at once is read from records past record_cursor instead.
CREATE TABLE webhook_late_records(id INTEGER PRIMARY KEY, record_id INTEGER NOT NULL REFERENCES records(id));
CREATE TRIGGER records_applied_late AFTER UPDATE OF status ON records
    WHEN NEW.status = 'applied' AND OLD.status <> 'applied'
    BEGIN INSERT INTO webhook_late_records(record_id) VALUES (NEW.id); END;
ALTER TABLE webhooks ADD COLUMN late_cursor INTEGER NOT NULL DEFAULT 0;
