-- QUARANTINED: a processed file whose object changed afterwards and no longer holds the bytes
-- that were verified (filepipe.process.verify re-verifies on every changed-object notification).
-- depends: 0004.trace-context

ALTER TABLE files DROP CONSTRAINT files_status_check;
ALTER TABLE files ADD CONSTRAINT files_status_check CHECK (status IN
    ('PENDING', 'UPLOADED', 'PROCESSING', 'PROCESSED', 'REJECTED', 'FAILED', 'EXPIRED',
     'QUARANTINED'));
