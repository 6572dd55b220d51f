-- 11: one name per record state: a record the hub decided did not happen is 'voided', as the
-- terminal calls the same fact; hubs before this stored it as 'not_happened'.
UPDATE records SET status = 'voided' WHERE status = 'not_happened';
