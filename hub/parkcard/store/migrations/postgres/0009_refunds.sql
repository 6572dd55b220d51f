-- A booth's refund claims the sale it reverses: one refund per sale, kept by the key (SPEC.md §4.4; SQLite's 9).
CREATE TABLE refunds(
    terminal_id BIGINT NOT NULL, sale_seq BIGINT NOT NULL, refund_seq BIGINT NOT NULL,
    PRIMARY KEY (terminal_id, sale_seq));
