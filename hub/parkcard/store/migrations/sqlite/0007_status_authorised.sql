-- 7: whether the terminal itself reports serving (status.authorised), beside the hub's decision.
ALTER TABLE terminals ADD COLUMN status_authorised INTEGER;
