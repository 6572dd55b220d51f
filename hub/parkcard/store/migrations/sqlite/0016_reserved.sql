-- Number 0016 is another change of the schema's (desk 0014, credits 0015, booth 0016); this empty
-- step keeps the gate migration 0017 in sequence and gives way to that file.
SELECT 1;
