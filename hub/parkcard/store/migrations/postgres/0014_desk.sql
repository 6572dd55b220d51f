-- Number 14 belongs to the front desk's own migration; this placeholder keeps the numbering without gaps
-- until it lands, and is replaced by it (it changes nothing).
SELECT 1;
