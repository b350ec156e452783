"""The process function: verify uploaded objects, record dead letters, reconcile.

- ``handler``: routes the CloudEvents it receives (bucket events, dead letters, pings);
- ``bucket_events``: MinIO/S3 notifications as RabbitmqSource delivers them;
- ``inspection``: streaming SHA-256, size and content sniffing;
- ``verify``: the lock, the verdict and the status changes;
- ``reading``: the object read, telling an object gone (permanent) from an outage (transient);
- ``dead_letters`` and ``reconcile``: where at-least-once delivery ends.
"""
