-- Without CANCELLED and DELETED, a cancelled upload reads as an expired one and a deleted file
-- (whose object is gone) as a rejected one, its error saying why.

UPDATE files SET status = 'EXPIRED' WHERE status = 'CANCELLED';
UPDATE files SET status = 'REJECTED', error = coalesce(error, 'deleted')
    WHERE status = 'DELETED';
ALTER TABLE files DROP CONSTRAINT files_status_check;
ALTER TABLE files ADD CONSTRAINT files_status_check CHECK (status IN
    ('PENDING', 'UPLOADED', 'PROCESSING', 'PROCESSED', 'REJECTED', 'FAILED', 'EXPIRED',
     'QUARANTINED'));
ALTER TABLE files DROP CONSTRAINT files_multipart_check;
ALTER TABLE files DROP COLUMN deleted_at;
ALTER TABLE files DROP COLUMN part_size;
ALTER TABLE files DROP COLUMN upload_id;
