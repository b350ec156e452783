DROP INDEX IF EXISTS files_retained_objects;
DROP INDEX IF EXISTS files_processed_checked;
DROP INDEX IF EXISTS files_unsettled_age;
UPDATE files SET status = 'FAILED' WHERE status = 'MISSING';
ALTER TABLE files DROP CONSTRAINT files_status_check;
ALTER TABLE files ADD CONSTRAINT files_status_check CHECK (status IN
    ('PENDING', 'UPLOADED', 'PROCESSING', 'PROCESSED', 'REJECTED', 'FAILED', 'EXPIRED',
     'QUARANTINED', 'CANCELLED', 'DELETED'));
ALTER TABLE files DROP COLUMN checked_at;
ALTER TABLE files DROP COLUMN dead_letters;
