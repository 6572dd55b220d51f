-- Number 0022 belongs to another change of the schema; this empty step keeps the park zone migration 0026
-- in sequence and gives way to that file.
SELECT 1;
