-- Upload quotas in constant time (issue 14): each tenant's PENDING files and their declared
-- bytes, kept by a trigger on files, so the caps are checked by reading one row instead of
-- counting every PENDING row of the tenant under a lock (filepipe.upload.quotas).
-- The trigger's update locks the tenant's row until the transaction ends: transactions changing
-- a tenant's PENDING files count one after another, each seeing those committed before it.
-- depends: 0013.reconcile

CREATE TABLE pending_counts (
    tenant text PRIMARY KEY REFERENCES tenants (name) ON DELETE CASCADE,
    files  bigint NOT NULL DEFAULT 0,
    bytes  numeric NOT NULL DEFAULT 0
);

CREATE FUNCTION count_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'PENDING' THEN
        UPDATE pending_counts SET files = files - 1, bytes = bytes - coalesce(OLD.declared_size, 0)
        WHERE tenant = OLD.tenant;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'PENDING' THEN
        INSERT INTO pending_counts AS c (tenant, files, bytes)
        VALUES (NEW.tenant, 1, coalesce(NEW.declared_size, 0))
        ON CONFLICT (tenant) DO UPDATE
        SET files = c.files + 1, bytes = c.bytes + EXCLUDED.bytes;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER files_count_pending
AFTER INSERT OR DELETE OR UPDATE OF status, declared_size, tenant ON files
FOR EACH ROW EXECUTE FUNCTION count_pending();

INSERT INTO pending_counts (tenant, files, bytes)
SELECT tenant, count(*), coalesce(sum(declared_size), 0) FROM files
WHERE status = 'PENDING' GROUP BY tenant;
