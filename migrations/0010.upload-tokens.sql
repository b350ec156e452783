-- upload_token_id: the upload token (filepipe.upload_tokens) a file was made with, if any. Tokens
-- live only in their signed text (no table); this column is how a token's routes find its
-- files, and the partial index serves the count of a token's files that enforces its max_files.
-- depends: 0009.deleted-purge

ALTER TABLE files ADD COLUMN upload_token_id uuid;
CREATE INDEX files_upload_token ON files (upload_token_id) WHERE upload_token_id IS NOT NULL;
