-- The W3C traceparent of the request that created the file (presign's POST /uploads), so the
-- storage notification, which carries no trace context, continues the upload's trace.
-- depends: 0003.query-indexes

ALTER TABLE files ADD COLUMN traceparent text;
