-- Before 0011 every file had a declared size and every multipart file a part size: a size found
-- by processing becomes the declared one, files whose size was never known are removed (with
-- their logs and events), and a multipart file without a part plan gets one part of its size.
UPDATE files SET declared_size = size_bytes WHERE declared_size IS NULL AND size_bytes IS NOT NULL;
DELETE FROM files WHERE declared_size IS NULL;
UPDATE files SET part_size = declared_size WHERE upload_id IS NOT NULL AND part_size IS NULL;
ALTER TABLE files DROP CONSTRAINT files_multipart_check;
ALTER TABLE files ADD CONSTRAINT files_multipart_check
    CHECK ((upload_id IS NULL) = (part_size IS NULL));
ALTER TABLE files ALTER COLUMN declared_size SET NOT NULL;
