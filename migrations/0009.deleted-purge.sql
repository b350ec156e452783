-- purged_at: when storage was last cleared of a DELETED file's object and unfinished multipart
-- uploads (DELETE /files/{id}, or the reconcile job for what that call left). An upload URL
-- still valid then may create the object afterwards, so a purge before upload_expires_at is
-- done again once it has passed. The partial index serves the reconcile job's search for
-- DELETED files still to purge (filepipe.files.store.unpurged), whatever the number of others.
-- depends: 0008.multipart-and-delete

ALTER TABLE files ADD COLUMN purged_at timestamptz;
CREATE INDEX files_deleted_unpurged ON files (deleted_at)
    WHERE status = 'DELETED' AND (purged_at IS NULL OR purged_at <= upload_expires_at);
