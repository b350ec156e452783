DROP INDEX files_upload_token;
ALTER TABLE files DROP COLUMN upload_token_id;
