-- Up Migration

-- A reconciliation run reaches the books through the stream like every change: the entry it came
-- from makes writing it twice a no-op.
ALTER TABLE reconciliation_runs ADD COLUMN entry_id text UNIQUE;

-- Down Migration

ALTER TABLE reconciliation_runs DROP COLUMN entry_id;
