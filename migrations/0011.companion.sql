-- Uploads of unknown size (Uppy's S3 plugin through the Companion routes sends none): a browser
-- form POST whose policy bounds the size, or a multipart upload whose parts the client sizes.
-- declared_size is NULL until known: a multipart completion records the parts' total; a form
-- upload's object is checked against the size limit alone. A part size (the plan of a multipart
-- upload of known size) still needs a declared size and an UploadId.
-- depends: 0009.deleted-purge

ALTER TABLE files ALTER COLUMN declared_size DROP NOT NULL;
ALTER TABLE files DROP CONSTRAINT files_multipart_check;
ALTER TABLE files ADD CONSTRAINT files_multipart_check
    CHECK (part_size IS NULL OR (upload_id IS NOT NULL AND declared_size IS NOT NULL));
