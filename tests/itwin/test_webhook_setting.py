"""ITWIN_RUNS_ALERT_WEBHOOK_URL: a Secret, https (or http on loopback), never echoed."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.itwin.settings import Secret, Settings, load_settings

SECRET = "T000/B000/canary-xyz"
VAR = "ITWIN_RUNS_ALERT_WEBHOOK_URL"


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.slack.com/services/{SECRET}",
        f"http://127.0.0.1:8080/{SECRET}",
        f"http://localhost/{SECRET}",
        f"http://[::1]:9/{SECRET}",
    ],
)
def test_an_https_or_loopback_url_is_kept_as_a_secret(url: str) -> None:
    settings = load_settings({VAR: url})
    assert isinstance(settings.alert_webhook_url, Secret)
    assert settings.alert_webhook_url.reveal() == url
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_unset_means_no_alerts() -> None:
    assert load_settings({}).alert_webhook_url is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"http://hooks.example.com/{SECRET}", "plain http"),
        (f"ftp://hooks.example.com/{SECRET}", "https URL"),
        (f"https://hooks.example.com/{SECRET}\n", "whitespace"),
        (f" https://hooks.example.com/{SECRET}", "whitespace"),
        (f"hooks.example.com/{SECRET}", "https URL"),
    ],
)
def test_a_bad_url_is_refused_naming_the_setting_not_the_value(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({VAR: url})
    message = str(caught.value)
    assert VAR in message and says in message
    assert SECRET not in message and "hooks.example.com" not in message


def test_the_same_checks_apply_when_set_in_code() -> None:
    with pytest.raises(ConfigError):
        Settings(alert_webhook_url=Secret(f"http://hooks.example.com/{SECRET}"))
