DROP TRIGGER IF EXISTS files_count_pending ON files;
DROP FUNCTION IF EXISTS count_pending();
DROP TABLE IF EXISTS pending_counts;
