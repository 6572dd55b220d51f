-- 9: a booth's refund claims the sale it reverses (SPEC.md §4.4): one refund per sale, kept by the key.
CREATE TABLE refunds(
    terminal_id INTEGER NOT NULL, sale_seq INTEGER NOT NULL, refund_seq INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, sale_seq)) WITHOUT ROWID;
