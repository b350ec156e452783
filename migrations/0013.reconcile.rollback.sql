DROP INDEX IF EXISTS webhook_messages_settled;
DROP INDEX IF EXISTS webhook_deliveries_created;
DROP INDEX IF EXISTS processing_logs_created;
DROP INDEX IF EXISTS events_published;
