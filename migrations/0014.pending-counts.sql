-- Upload quotas in constant time (issue 14): each tenant's PENDING files and their declared
-- bytes, kept by a trigger on files, so the caps are checked against one row instead of counting
-- every PENDING row of the tenant (filepipe.upload.quotas).
-- The trigger is deferred: it runs at commit, so a tenant's row is locked only while a
-- transaction commits (not for its whole life), and transactions changing a tenant's PENDING
-- files still count one after another, each seeing those committed before it. A transaction
-- that set filepipe.max_pending_files and filepipe.max_pending_bytes (set_config, local) fails
-- at commit when a PENDING file it inserted passes them: 'pending_files' or 'pending_bytes'
-- (SQLSTATE P0001), the detail holding the tenant's other PENDING files or bytes.
-- depends: 0013.reconcile

CREATE TABLE pending_counts (
    tenant text PRIMARY KEY REFERENCES tenants (name) ON DELETE CASCADE,
    files  bigint NOT NULL DEFAULT 0,
    bytes  numeric NOT NULL DEFAULT 0
);

CREATE FUNCTION count_pending() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    counted pending_counts;
    max_files bigint := nullif(current_setting('filepipe.max_pending_files', true), '')::bigint;
    max_bytes numeric := nullif(current_setting('filepipe.max_pending_bytes', true), '')::numeric;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'PENDING' THEN
        UPDATE pending_counts SET files = files - 1, bytes = bytes - coalesce(OLD.declared_size, 0)
        WHERE tenant = OLD.tenant;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'PENDING' THEN
        INSERT INTO pending_counts AS c (tenant, files, bytes)
        VALUES (NEW.tenant, 1, coalesce(NEW.declared_size, 0))
        ON CONFLICT (tenant) DO UPDATE SET files = c.files + 1, bytes = c.bytes + EXCLUDED.bytes
        RETURNING * INTO counted;
        IF TG_OP = 'INSERT' AND counted.files - 1 >= max_files THEN
            RAISE EXCEPTION 'pending_files' USING DETAIL = counted.files - 1;
        END IF;
        IF TG_OP = 'INSERT' AND counted.bytes > max_bytes THEN
            RAISE EXCEPTION 'pending_bytes'
                USING DETAIL = counted.bytes - coalesce(NEW.declared_size, 0);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER files_count_pending
AFTER INSERT OR DELETE OR UPDATE OF status, declared_size, tenant ON files
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION count_pending();

INSERT INTO pending_counts (tenant, files, bytes)
SELECT tenant, count(*), coalesce(sum(declared_size), 0) FROM files
WHERE status = 'PENDING' GROUP BY tenant;
