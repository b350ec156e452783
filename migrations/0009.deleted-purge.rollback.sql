DROP INDEX files_deleted_unpurged;
ALTER TABLE files DROP COLUMN purged_at;
