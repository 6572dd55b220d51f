-- Pending credits (SPEC.md §8; SQLite's 15).
CREATE TABLE pending_credits(
    card_no BIGINT NOT NULL, credit_no BIGINT NOT NULL CHECK (credit_no BETWEEN 1 AND 65535),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0), reason TEXT NOT NULL, source TEXT NOT NULL,
    granted_by TEXT NOT NULL, granted_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('granted', 'sent', 'delivered', 'cancelled')),
    grant_tx BIGINT NOT NULL, cancel_tx BIGINT,
    delivered_terminal BIGINT, delivered_seq BIGINT,
    PRIMARY KEY (card_no, credit_no));
CREATE INDEX pending_credits_open ON pending_credits(state) WHERE state IN ('granted', 'sent');
CREATE TABLE credits_version(id BIGINT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
INSERT INTO credits_version(id, version) VALUES (1, 0);
