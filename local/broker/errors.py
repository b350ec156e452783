"""Exceptions of the broker emulator.

BrokerError
├── ConfigError     an environment variable holds a value the emulator cannot use
├── ManifestError   a Knative manifest is malformed or uses something the emulator lacks
├── InvalidEvent    an HTTP request or message is not a valid CloudEvent
└── PublishError    RabbitMQ did not confirm a publish
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every error the emulator raises on purpose."""


class ConfigError(BrokerError, ValueError):
    """An environment variable holds a value the emulator cannot use."""


class ManifestError(BrokerError, ValueError):
    """A Knative manifest is malformed or uses a feature the emulator does not emulate."""


class InvalidEvent(BrokerError, ValueError):
    """An HTTP request or message is not a valid CloudEvent."""


class PublishError(BrokerError):
    """RabbitMQ did not confirm a publish (connection lost, nack, unroutable, timeout)."""
