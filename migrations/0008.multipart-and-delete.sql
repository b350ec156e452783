-- Multipart uploads (the S3 UploadId and part size of a file uploaded in parts), CANCELLED (a
-- multipart upload aborted before completion) and DELETED (object removed through
-- DELETE /files/{id}; the row stays for audit, out of lists unless asked for).
-- depends: 0005.quarantine

ALTER TABLE files ADD COLUMN upload_id text;
ALTER TABLE files ADD COLUMN part_size bigint CHECK (part_size > 0);
ALTER TABLE files ADD COLUMN deleted_at timestamptz;
ALTER TABLE files ADD CONSTRAINT files_multipart_check
    CHECK ((upload_id IS NULL) = (part_size IS NULL));
ALTER TABLE files DROP CONSTRAINT files_status_check;
ALTER TABLE files ADD CONSTRAINT files_status_check CHECK (status IN
    ('PENDING', 'UPLOADED', 'PROCESSING', 'PROCESSED', 'REJECTED', 'FAILED', 'EXPIRED',
     'QUARANTINED', 'CANCELLED', 'DELETED'));
