-- A pending credit's grant id (parkcard.services.credits.grant_credit): made by the caller (a desk form, an
-- API request) before the first send and sent again on every retry, so a grant re-sent after a hub restart is
-- the credit granted the first time, never a second one. NULL for a grant without one (older grants, holds).
ALTER TABLE pending_credits ADD COLUMN grant_id TEXT;
CREATE UNIQUE INDEX pending_credits_grant_id ON pending_credits(grant_id) WHERE grant_id IS NOT NULL;
