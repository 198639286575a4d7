"""Settings: environment, config file and overrides, and the errors users see."""

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.itwin.ids import normalize_id, normalize_ids
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


# --- range checks, URLs, secrets and ids (issue 22) ------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("ITWIN_RATE_LIMIT_PER_MINUTE", "nan", "> 0"),
        ("ITWIN_RATE_LIMIT_PER_MINUTE", "inf", "> 0"),
        ("ITWIN_RATE_LIMIT_PER_MINUTE", "0", "> 0"),
        ("ITWIN_RATE_LIMIT_PER_HOUR", "-5000", "> 0"),
        ("ITWIN_RATE_LIMIT_PER_HOUR", "1e999", "> 0"),
        ("ITWIN_MAX_WAIT_S", "-1", ">= 0"),
        ("ITWIN_MAX_WAIT_S", "NaN", ">= 0"),
    ],
)
def test_environment_numbers_out_of_range_name_the_variable_and_the_range(
    variable: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert variable in message and f"allowed: a number {allowed}" in message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            "max_retries: -1\n",
            "max_retries has an invalid value: -1 is out of range; allowed: an integer >= 0",
        ),
        ("max_retries: 2.5\n", "max_retries has an invalid value: 2.5 is not a whole number"),
        ("max_retries: .nan\n", "max_retries has an invalid value: nan is out of range"),
        ("request_deadline_s: 0\n", "request_deadline_s has an invalid value: 0 is out of range"),
        ("request_deadline_s: .inf\n", "request_deadline_s has an invalid value: inf is out"),
        ("max_pages: 0\n", "max_pages has an invalid value: 0 is out of range"),
        ("max_concurrency: -4\n", "max_concurrency has an invalid value"),
        ("max_answer_mb: 0\n", "max_answer_mb has an invalid value"),
        (
            "backoff_base_s: true\n",
            "backoff_base_s has an invalid value: expected a number, got bool",
        ),
        ("base_url: [https://a, https://b]\n", "base_url) must be a single string, got list"),
        ("data_dir: [a, b]\n", "data_dir) must be a single string, got list"),
        ("token_url: {x: 1}\n", "token_url) must be a single string, got dict"),
        ("allow_insecure_http: maybe\n", "must be true or false"),
    ],
)
def test_config_file_values_out_of_range_or_of_the_wrong_shape_are_one_clear_error(
    tmp_path: Path, content: str, needle: str
) -> None:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, config_file=cfg)
    assert needle in str(caught.value)


def test_new_settings_have_their_defaults_and_read_the_environment() -> None:
    default = load_settings({})
    assert (default.rate_limit_per_hour, default.max_wait_s, default.max_answer_mb) == (
        None,
        900.0,
        64.0,
    )
    s = load_settings({"ITWIN_RATE_LIMIT_PER_HOUR": "5000", "ITWIN_MAX_WAIT_S": "60"})
    assert (s.rate_limit_per_hour, s.max_wait_s) == (5000.0, 60.0)


@pytest.mark.parametrize(
    "url", ["http://api.example.com", "http://10.0.0.5:8080/api", "http://[2001:db8::1]/"]
)
@pytest.mark.parametrize("variable", ["ITWIN_API_BASE_URL", "ITWIN_TOKEN_URL"])
def test_plain_http_to_another_host_is_refused_unless_opted_in(variable: str, url: str) -> None:
    with pytest.raises(ConfigError, match="ITWIN_ALLOW_INSECURE_HTTP=1") as caught:
        load_settings({variable: url})
    assert "\n" not in str(caught.value)
    allowed = load_settings({variable: url, "ITWIN_ALLOW_INSECURE_HTTP": "1"})
    assert url in (allowed.base_url, allowed.token_url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8123", "http://localhost:9000/x", "http://[::1]:80", "http://127.9.9.9"],
)
def test_plain_http_on_loopback_stays_allowed(url: str) -> None:
    assert load_settings({"ITWIN_API_BASE_URL": url}).base_url == url


def test_credentials_in_a_url_are_refused_without_echoing_them() -> None:
    for variable in ("ITWIN_API_BASE_URL", "ITWIN_TOKEN_URL"):
        with pytest.raises(ConfigError) as caught:
            load_settings({variable: "https://someone:hunter2-pw@api.bentley.com"})
        assert "hunter2-pw" not in str(caught.value) and variable in str(caught.value)


@pytest.mark.parametrize("bad", ["tok-123 ", "tok-123\r", "tok\n123", "\ttok-123", "tok\x00x"])
@pytest.mark.parametrize("variable", ["ITWIN_ACCESS_TOKEN", "ITWIN_CLIENT_SECRET"])
def test_secrets_with_whitespace_or_control_characters_are_refused_unechoed(
    variable: str, bad: str
) -> None:
    with pytest.raises(ConfigError, match="whitespace or a control character") as caught:
        load_settings({variable: bad, "ITWIN_CLIENT_ID": "client"})
    assert "tok" not in str(caught.value).replace("token", "")
    assert variable in str(caught.value)


def test_secrets_built_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="ITWIN_ACCESS_TOKEN"):
        Settings(access_token=Secret("abc\r\n"))


def test_connection_ids_are_trimmed_deduplicated_and_guids_lower_cased() -> None:
    upper = "8E2B6A1C-0D1F-4C5B-9A7E-3F2D1C0B9A8E"
    s = load_settings({"ITWIN_CONNECTION_IDS": f" {upper} ,{upper.lower()}, plain-Id ,,plain-Id"})
    assert s.connection_ids == (upper.lower(), "plain-Id")
    listed = load_settings({}, overrides={"imodel_ids": [upper, f"  {upper.lower()}  "]})
    assert listed.imodel_ids == (upper.lower(),)


def test_normalize_id_lower_cases_guids_only() -> None:
    assert normalize_id("  ABCDEF01-2345-6789-ABCD-EF0123456789\t") == (
        "abcdef01-2345-6789-abcd-ef0123456789"
    )
    assert normalize_id(" Run-ABC ") == "Run-ABC"
    assert normalize_ids(["a", " a", "B", "b"]) == ("a", "B", "b")
