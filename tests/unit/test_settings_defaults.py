"""The defaults of the settings live in one place, config.SETTINGS."""

from __future__ import annotations

from axn_bind.config import SETTINGS, Settings


def test_settings_fields_have_no_defaults_of_their_own():
    assert Settings._field_defaults == {}


def test_an_empty_environment_reads_the_defaults_of_settings():
    read = Settings.from_env({})
    default = {name: value for name, (value, _) in SETTINGS.items()}
    assert read.publish_timeout == float(default["AXN_PUBLISH_TIMEOUT_MS"]) / 1000
    assert read.sweep_grace == float(default["AXN_SWEEP_GRACE_SECONDS"])
    assert read.backoff_base == float(default["DYPLS_BACKOFF_BASE_MS"]) / 1000
    assert read.backoff_max == float(default["DYPLS_BACKOFF_MAX_MS"]) / 1000
    assert read.max_attempts == int(default["DYPLS_MAX_ATTEMPTS"])
    assert read.idempotency_url == default["AXN_IDEMPOTENCY_URL"]
    assert read.endpoint == default["DYPLS_ENDPOINT"]
    assert read.publish_to == () and read.webhook_secret == default["AXN_WEBHOOK_SECRET"]
