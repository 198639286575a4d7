"""The API resource takes the settings users rely on from Dagster run config too."""

from __future__ import annotations

import pytest

from pipeline.defs.resources import ITwinApiResource
from pipeline.errors import ConfigError
from pipeline.itwin.settings import Secret


def test_rate_limits_wait_and_webhook_come_from_the_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ITWIN_RATE_LIMIT_PER_HOUR", "ITWIN_MAX_WAIT_S", "ITWIN_RUNS_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    url = "https://hooks.example.test/services/T0/B0/secret-part"
    settings = ITwinApiResource(
        base_url="https://api.example.test",
        access_token="token",
        rate_limit_per_hour=5000,
        max_wait_s=60,
        alert_webhook_url=url,
    ).settings()
    assert settings.rate_limit_per_hour == 5000 and settings.max_wait_s == 60
    assert isinstance(settings.alert_webhook_url, Secret)
    assert settings.alert_webhook_url.reveal() == url
    assert url not in repr(settings)


def test_an_out_of_range_wait_from_the_resource_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="ITWIN_MAX_WAIT_S"):
        ITwinApiResource(base_url="https://api.example.test", max_wait_s=-1).settings()
