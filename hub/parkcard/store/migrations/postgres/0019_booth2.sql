-- Number 19 belongs to the booth's second migration; this placeholder keeps the numbering without gaps
-- until it lands, and is replaced by it (it changes nothing).
SELECT 1;
