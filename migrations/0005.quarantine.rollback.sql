-- Without QUARANTINED, a quarantined file is a rejected one (its error says why).

UPDATE files SET status = 'REJECTED' WHERE status = 'QUARANTINED';
ALTER TABLE files DROP CONSTRAINT files_status_check;
ALTER TABLE files ADD CONSTRAINT files_status_check CHECK (status IN
    ('PENDING', 'UPLOADED', 'PROCESSING', 'PROCESSED', 'REJECTED', 'FAILED', 'EXPIRED'));
