-- Forget the files' trace context.

ALTER TABLE files DROP COLUMN traceparent;
