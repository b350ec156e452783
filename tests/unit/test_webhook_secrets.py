"""Webhook secrets at rest (``SecretBox``) and the settings behind them (no I/O)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from filepipe.config import Settings
from filepipe.errors import ConfigError
from filepipe.notify.webhooks import encryption
from filepipe.notify.webhooks.encryption import SecretBox
from filepipe.notify.webhooks.errors import SecretUnreadable
from filepipe.notify.webhooks.signing import new_secret

KEYS = [Fernet.generate_key().decode() for _ in range(3)]


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    secret = new_secret()
    old, new = SecretBox([KEYS[0]]), SecretBox([KEYS[1], KEYS[0]])

    sealed = old.seal(secret)
    assert secret not in sealed and secret.removeprefix("whsec_") not in sealed
    assert new.open(sealed) == secret
    resealed = new.reseal(sealed)
    assert SecretBox([KEYS[1]]).open(resealed) == secret
    with pytest.raises(SecretUnreadable):
        old.open(resealed)
    with pytest.raises(SecretUnreadable):
        SecretBox([KEYS[2]]).reseal(sealed)


def test_the_key_id_names_the_first_key_without_revealing_it() -> None:
    box = SecretBox([KEYS[0], KEYS[1]])
    assert box.key_id == SecretBox([KEYS[0]]).key_id != SecretBox([KEYS[1], KEYS[0]]).key_id
    assert len(box.key_id) == 16 and box.key_id not in KEYS[0]
    assert KEYS[0] not in repr(box)
    with pytest.raises(ValueError, match="at least one key"):
        SecretBox([])


def test_settings_read_keys_and_ports_and_hide_the_keys() -> None:
    settings = Settings.from_env(
        {
            "FILEPIPE_WEBHOOK_SECRET_KEYS": f" {KEYS[0]} , {KEYS[1]} ",
            "FILEPIPE_WEBHOOK_PORTS": "443, 8000-8999,80",
        }
    )
    assert settings.webhook_secret_keys == (KEYS[0], KEYS[1])
    assert settings.webhook_port_ranges == ((443, 443), (8000, 8999), (80, 80))
    assert KEYS[0] not in repr(settings) and "webhook_secret_keys='***'" in repr(settings)
    box = encryption.box_for(settings)
    assert box is not None and box.key_id == SecretBox([KEYS[0]]).key_id
    assert encryption.box_for(Settings()) is None
    assert Settings().webhook_port_ranges == ((80, 80), (443, 443))


@pytest.mark.parametrize(
    ("env", "rule"),
    [
        ({"FILEPIPE_WEBHOOK_SECRET_KEYS": "not-a-key"}, "must each be a Fernet key"),
        ({"FILEPIPE_WEBHOOK_SECRET_KEYS": KEYS[0] + ",short"}, "must each be a Fernet key"),
        ({"FILEPIPE_WEBHOOK_SECRET_KEYS": KEYS[0][:-1] + "!"}, "must each be a Fernet key"),
        ({"FILEPIPE_WEBHOOK_SECRET_KEYS": ","}, "must name at least one key"),
        ({"FILEPIPE_WEBHOOK_PORTS": ","}, "must name at least one port"),
        ({"FILEPIPE_WEBHOOK_PORTS": "0"}, "TCP port or a range"),
        ({"FILEPIPE_WEBHOOK_PORTS": "65536"}, "TCP port or a range"),
        ({"FILEPIPE_WEBHOOK_PORTS": "9000-8000"}, "TCP port or a range"),
        ({"FILEPIPE_WEBHOOK_PORTS": "443,https"}, "TCP port or a range"),
        ({"FILEPIPE_WEBHOOK_PORTS": "*"}, "TCP port or a range"),
    ],
)
def test_bad_values_stop_the_process_naming_the_variable(env: dict[str, str], rule: str) -> None:
    with pytest.raises(ConfigError, match=rule) as refused:
        Settings.from_env(env)
    message = str(refused.value)
    assert message.startswith(next(iter(env)))
    if "KEYS" in next(iter(env)):
        assert KEYS[0] not in message and "not-a-key" not in message
