-- Reconcile and retention (issue 13): what prunes history in bounded batches reads by age.
-- Each index serves one DELETE … WHERE ctid IN (SELECT … ORDER BY <column> LIMIT n) of
-- filepipe.retention, so a run costs its batch whatever the size of the table.
-- depends: 0012.failure-handling

-- published events by when they went out (unpublished ones are never pruned)
CREATE INDEX events_published ON events (published_at) WHERE published_at IS NOT NULL;
-- processing logs, webhook delivery attempts by age
CREATE INDEX processing_logs_created ON processing_logs (created_at);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
-- webhook messages that settled (delivered, failed, abandoned) by when they did
CREATE INDEX webhook_messages_settled ON webhook_messages (updated_at) WHERE state <> 'pending';
