"""Settings: environment, config file and overrides, and the errors users see."""

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.itwin.settings import Secret, Settings, load_settings

CANARY = "canary-secret-6f1d"


def test_defaults_match_the_contract() -> None:
    s = load_settings({})
    assert s.base_url == "https://api.bentley.com"
    assert s.token_url == "https://ims.bentley.com/connect/token"
    assert s.scope == "itwin-platform"
    assert s.rate_limit_per_minute == 500
    assert s.data_dir == Path("data")
    assert s.connection_ids == () and s.imodel_ids == ()


def test_environment_variables_are_read() -> None:
    s = load_settings(
        {
            "ITWIN_API_BASE_URL": "https://qa-api.bentley.com",
            "ITWIN_CLIENT_ID": "svc",
            "ITWIN_CLIENT_SECRET": CANARY,
            "ITWIN_CONNECTION_IDS": " a, b ,,c ",
            "ITWIN_IMODEL_IDS": "m1",
            "ITWIN_RATE_LIMIT_PER_MINUTE": "5000",
            "ITWIN_RUNS_DATA_DIR": "/tmp/x",
        }
    )
    assert s.base_url == "https://qa-api.bentley.com"
    assert s.connection_ids == ("a", "b", "c")
    assert s.imodel_ids == ("m1",)
    assert s.rate_limit_per_minute == 5000.0
    assert s.data_dir == Path("/tmp/x")
    assert s.client_secret == Secret(CANARY)
    assert s.has_credentials


def test_secrets_never_show_in_repr() -> None:
    s = load_settings({"ITWIN_ACCESS_TOKEN": CANARY, "ITWIN_CLIENT_SECRET": CANARY})
    assert CANARY not in repr(s) and CANARY not in str(s)
    assert s.access_token is not None and s.access_token.reveal() == CANARY


def test_config_file_is_overlaid_by_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "itwin.yaml"
    cfg.write_text("connection_ids: [x, y]\nscope: export:read\nrate_limit_per_minute: 100\n")
    s = load_settings({"ITWIN_RUNS_CONFIG": str(cfg), "ITWIN_SCOPE": "itwin-platform"})
    assert s.connection_ids == ("x", "y")
    assert s.scope == "itwin-platform"
    assert s.rate_limit_per_minute == 100


def test_overrides_win(tmp_path: Path) -> None:
    s = load_settings({"ITWIN_CONNECTION_IDS": "a"}, overrides={"connection_ids": ["z"]})
    assert s.connection_ids == ("z",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("connection_ids: [a\n", "not valid YAML at line"),
        ("- a\n- b\n", "must hold a mapping"),
        ("colour: blue\n", "unknown setting 'colour'"),
        ("rate_limit_per_minute: fast\n", r"rate_limit_per_minute\) has an invalid value"),
        ("rate_limit_per_minute: -3\n", r"rate_limit_per_minute\) has an invalid value"),
    ],
)
def test_bad_config_file_names_the_problem(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings({}, config_file=cfg)


def test_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings({}, config_file=tmp_path / "missing.yaml")


def test_missing_credentials_and_targets_say_what_to_set() -> None:
    s = Settings()
    with pytest.raises(ConfigError, match="ITWIN_ACCESS_TOKEN"):
        s.require_credentials()
    with pytest.raises(ConfigError, match="ITWIN_CONNECTION_IDS"):
        s.require_targets()
