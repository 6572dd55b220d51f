-- Number 0014 is another change of the schema's (operators 0013, desk 0014, credits 0015); this empty
-- step keeps the booth migration 0016 in sequence and gives way to that file.
SELECT 1;
