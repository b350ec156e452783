"""The notify function: file events to signed webhooks and real-time WebSocket messages.

- ``handler``: routes the CloudEvents it receives (file events, the webhook-retry ping);
- ``realtime``: publishes events on Redis pub/sub for the gateway;
- ``webhooks/``: endpoints, durable signed delivery, SSRF guard, the subscription API;
- ``gateway/``: the WebSocket server streaming a tenant's events.
"""
