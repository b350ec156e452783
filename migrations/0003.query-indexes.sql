-- GET /files?content_type=: filter on the media type essence of the effective type, so a file
-- declared as 'text/csv; charset=utf-8' (and not yet processed) matches content_type=text/csv.
-- The expression must stay identical to filepipe.file_queries.EFFECTIVE_TYPE. It replaces the
-- index of 0001 on the raw coalesce(), which no query uses any more.
-- depends: 0001.initial-schema

DROP INDEX files_tenant_type_created;
CREATE INDEX files_tenant_type_created ON files (
    tenant,
    (substring(coalesce(content_type, declared_content_type) from '^[^;[:space:]]+')),
    created_at DESC,
    id DESC
);
