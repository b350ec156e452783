"""Local emulator of Knative Eventing's RabbitMQ Broker, Triggers, RabbitmqSource and PingSource.

It reads the manifests in ``knative/eventing/`` and does locally what eventing-rabbitmq does on a
cluster: an HTTP ingress that stores CloudEvents in RabbitMQ, one durable queue per Trigger,
filtered binary-mode delivery with retries and dead letters, and the two event sources.
Run it with ``python -m local.broker [serve|replay]``.
"""
