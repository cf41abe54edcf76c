"""load_settings: defaults < config.toml < TIERBOT_* environment < init arguments (CLI flags)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).parents[1] / "config.example.toml"


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory and no TIERBOT_* variable from the outer environment."""
    for key in list(os.environ):
        if key.startswith("TIERBOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./tierbot.db"
    assert settings.sqlite_path == Path("tierbot.db")
    assert settings.timezone == "Asia/Shanghai"
    assert str(settings.zone) == "Asia/Shanghai"
    assert settings.transport == "sim"
    assert settings.api.port == 8080 and settings.api.token == ""
    assert settings.tenants.home_watch_days == 14


def test_config_toml_in_the_working_directory_is_read(tmp_path: Path):
    write(tmp_path / "config.toml", """
timezone = "Asia/Urumqi"
transport = "memory"

[api]
port = 9001
token = "file-token"

[tenants]
fever_threshold = 37.5
""")
    settings = load_settings()
    assert settings.timezone == "Asia/Urumqi"
    assert settings.transport == "memory"
    assert settings.api.port == 9001 and settings.api.token == "file-token"
    assert settings.api.host == "127.0.0.1"
    assert settings.tenants.fever_threshold == 37.5
    assert settings.tenants.home_watch_days == 14


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "config.toml", """
timezone = "Asia/Urumqi"
[api]
port = 9001
token = "file-token"
""")
    monkeypatch.setenv("TIERBOT_TIMEZONE", "Asia/Hong_Kong")
    monkeypatch.setenv("TIERBOT_API__PORT", "9002")
    settings = load_settings()
    assert settings.timezone == "Asia/Hong_Kong"
    assert settings.api.port == 9002
    # The rest of the [api] table still comes from the file.
    assert settings.api.token == "file-token"


def test_init_overrides_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "config.toml", 'database_url = "sqlite:///from-file.db"\n')
    monkeypatch.setenv("TIERBOT_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("TIERBOT_TIMEZONE", "Asia/Hong_Kong")
    assert load_settings().database_url == "sqlite+aiosqlite:///from-env.db"
    settings = load_settings(database_url="sqlite:///from-flag.db", timezone=None,
                             log_level="DEBUG")
    assert settings.database_url == "sqlite+aiosqlite:///from-flag.db"
    # A flag that was not given (None) does not hide the environment.
    assert settings.timezone == "Asia/Hong_Kong"
    assert settings.log_level == "DEBUG"


def test_explicit_config_file_and_tierbot_config(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "config.toml", 'timezone = "Asia/Urumqi"\n')
    other = write(tmp_path / "other.toml", 'timezone = "Asia/Hong_Kong"\n')
    assert load_settings(other).timezone == "Asia/Hong_Kong"
    monkeypatch.setenv("TIERBOT_CONFIG", str(other))
    assert load_settings().timezone == "Asia/Hong_Kong"


@pytest.mark.parametrize("text, key", [
    ('colour = "red"\n', "colour"),
    ('[api]\ntoken = "x"\nhots = "0.0.0.0"\n', "api.hots"),
    ('[tenant]\nhome_watch_days = 7\n', "tenant"),
])
def test_unknown_key_in_file_is_an_error(tmp_path: Path, text: str, key: str):
    write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert f"{key}: unknown key" in str(err.value)


@pytest.mark.parametrize("text, key, value", [
    ("[api]\nport = 99999\n", "api.port", "99999"),
    ('timezone = "Mars/Base"\n', "timezone", "Mars/Base"),
    ('transport = "telegram"\n', "transport", "telegram"),
    ('database_url = "mysql://x"\n', "database_url", "mysql://x"),
])
def test_bad_value_in_file_is_an_error(tmp_path: Path, text: str, key: str, value: str):
    write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.count(f"{key}:") == 1 and value in message


@pytest.mark.parametrize("env, value, key", [
    ("TIERBOT_API__PORT", "99999", "api.port"),
    ("TIERBOT_API__PORT", "abc", "api.port"),
    ("TIERBOT_TIMEZONE", "Mars/Base", "timezone"),
    ("TIERBOT_TRANSPORT", "telegram", "transport"),
    ("TIERBOT_DATABASE_URL", "mysql://x", "database_url"),
])
def test_bad_value_in_environment_is_an_error(monkeypatch: pytest.MonkeyPatch, env: str,
                                              value: str, key: str):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert f"{key}:" in str(err.value)


def test_bad_init_override_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        load_settings(timezone="Mars/Base")
    assert "timezone:" in str(err.value)


@pytest.mark.parametrize("given, stored", [
    ("postgresql://u:p@db:5432/tierbot", "postgresql+asyncpg://u:p@db:5432/tierbot"),
    ("postgres://u@db/tierbot", "postgresql+asyncpg://u@db/tierbot"),
    ("postgresql+asyncpg://u@db/tierbot", "postgresql+asyncpg://u@db/tierbot"),
    ("sqlite:////var/lib/tierbot.db", "sqlite+aiosqlite:////var/lib/tierbot.db"),
])
def test_database_url_gets_the_async_driver(monkeypatch: pytest.MonkeyPatch, given: str,
                                            stored: str):
    monkeypatch.setenv("TIERBOT_DATABASE_URL", given)
    settings = load_settings()
    assert settings.database_url == stored
    assert settings.is_sqlite == stored.startswith("sqlite")


def test_invalid_toml_is_an_error(tmp_path: Path):
    path = write(tmp_path / "config.toml", "[api\nport = 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "not valid TOML" in str(err.value) and str(path.name) in str(err.value)


def test_tierbot_config_naming_a_missing_file_is_an_error(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TIERBOT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "missing.toml" in str(err.value)


def test_explicit_missing_config_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.toml")
    assert "nope.toml" in str(err.value)


def test_settings_built_directly_ignore_config_toml(tmp_path: Path):
    # Tests build Settings(...) directly: a config.toml lying around must not leak in.
    write(tmp_path / "config.toml", 'timezone = "Asia/Urumqi"\n')
    assert Settings().timezone == "Asia/Shanghai"


def test_config_example_loads():
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE.name} does not exist yet")
    settings = load_settings(EXAMPLE)
    assert isinstance(settings, Settings)


def test_other_tierbot_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch):
    # The test suite's own variable shares the prefix; it is not a setting and not an error.
    monkeypatch.setenv("TIERBOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@h/db")
    assert load_settings().database_url == "sqlite+aiosqlite:///./tierbot.db"
