-- Restore 0001's index on the raw effective type.

DROP INDEX files_tenant_type_created;
CREATE INDEX files_tenant_type_created
    ON files (tenant, (coalesce(content_type, declared_content_type)), created_at DESC, id DESC);
