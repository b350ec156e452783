-- Failure handling (issue 13).
-- MISSING: a file whose object disappeared from storage without filepipe removing it.
-- dead_letters: how many times the broker gave up on the file's notification; transient causes
-- leave the file to reconcile until process_max_dead_letters or process_give_up.
-- checked_at: when reconcile last looked at the file's object (PROCESSED: still exists).
-- purged_at (0009) now also records the removal of the objects of REJECTED, EXPIRED, FAILED,
-- CANCELLED and MISSING files after the retention period.
-- depends: 0011.companion

ALTER TABLE files ADD COLUMN dead_letters integer NOT NULL DEFAULT 0 CHECK (dead_letters >= 0);
ALTER TABLE files ADD COLUMN checked_at timestamptz;
ALTER TABLE files DROP CONSTRAINT files_status_check;
ALTER TABLE files ADD CONSTRAINT files_status_check CHECK (status IN
    ('PENDING', 'UPLOADED', 'PROCESSING', 'PROCESSED', 'REJECTED', 'FAILED', 'EXPIRED',
     'QUARANTINED', 'CANCELLED', 'DELETED', 'MISSING'));
-- reconcile: unsettled files by age (stuck UPLOADED/PROCESSING, PENDING with an object)
CREATE INDEX files_unsettled_age ON files (updated_at)
    WHERE status IN ('PENDING', 'UPLOADED', 'PROCESSING');
-- reconcile: PROCESSED files whose object was checked least recently
CREATE INDEX files_processed_checked ON files (checked_at NULLS FIRST)
    WHERE status = 'PROCESSED';
-- retention: settled files whose object is still to remove
CREATE INDEX files_retained_objects ON files (updated_at)
    WHERE status IN ('REJECTED', 'EXPIRED', 'FAILED', 'CANCELLED', 'MISSING')
      AND purged_at IS NULL;
