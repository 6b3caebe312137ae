"""Configuration: the example documents every key, and errors name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from infra.config import ConfigError, Settings, load_settings
from tests.conftest import REPO

EXAMPLE = REPO / "config.example.toml"


def _keys(model: type[Settings]) -> set[str]:
    keys = set()
    for section, field in model.model_fields.items():
        for key in field.annotation.model_fields:  # type: ignore[union-attr]
            keys.add(f"{section}.{key}")
    return keys


def test_example_documents_every_key_with_its_default() -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    in_example = {f"{s}.{k}" for s, values in data.items() for k in values}
    assert in_example == _keys(Settings)
    assert load_settings(EXAMPLE, env={}) == Settings()


def test_missing_default_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.database.url == "sqlite:///var/qcbot.sqlite3"
    assert settings.campaign.timezone == "Asia/Shanghai"
    assert not settings.telegram.has_token


def test_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[telegram]\ntokn = 'x'\n", "telegram.tokn", "unknown key"),
        ("[bogus]\nx = 1\n", "bogus", "unknown key"),
        ("[campaign]\ntimezone = 'Mars/Olympus'\n", "campaign.timezone", "unknown time zone"),
        ("[database]\nurl = 'not a url'\n", "database.url", "malformed database URL"),
        ("[database]\nurl = 'mysql://x@y/z'\n", "database.url", "only sqlite"),
        ("[telegram]\nmode = 'carrier-pigeon'\n", "telegram.mode", "polling"),
        ("[scheduler]\nnudge_time = 'noon'\n", "scheduler.nudge_time", ""),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), env={})
    assert key in str(info.value)
    assert words in str(info.value)


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[telegram\n"), env={})


def test_environment_overrides_secrets_and_deployment(tmp_path: Path) -> None:
    path = _write(tmp_path, "[telegram]\ntoken = 'from-file'\n")
    env = {
        "QCBOT_BOT_TOKEN": "123:from-env",
        "QCBOT_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
    }
    settings = load_settings(path, env=env)
    assert settings.telegram.token.get_secret_value() == "123:from-env"
    assert settings.database.url.startswith("postgresql://")


def test_config_env_var_points_at_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[campaign]\ntimezone = 'Asia/Urumqi'\n")
    settings = load_settings(env={"QCBOT_CONFIG": str(path)})
    assert settings.campaign.timezone == "Asia/Urumqi"


def test_token_is_secret_in_repr() -> None:
    settings = load_settings(env={"QCBOT_BOT_TOKEN": "123456789:" + "A" * 35})
    assert "AAAAAAAA" not in repr(settings)
    assert "AAAAAAAA" not in str(settings.telegram)


def test_the_sqlite_database_is_its_owners_only(tmp_path) -> None:  # noqa: ANN001
    """The record holds personal data: the database file (and SQLite's -wal/-shm, made with
    its permissions) is created 0600 in a 0700 directory, whatever the umask."""
    import os
    import stat

    from sqlmodel import text

    from infra.db import make_engine, transaction

    old = os.umask(0o022)
    try:
        path = tmp_path / "var" / "qcbot.sqlite3"
        engine = make_engine(f"sqlite:///{path}")
        with transaction(engine) as s:
            s.exec(text("CREATE TABLE t (x INTEGER)"))  # type: ignore[call-overload]
            s.exec(text("INSERT INTO t VALUES (1)"))  # type: ignore[call-overload]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
        engine.dispose()
    finally:
        os.umask(old)
    assert modes["qcbot.sqlite3"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_webhook_mode_is_checked_when_the_configuration_is_read() -> None:
    """Before qcbot run writes anything (migrates, imports the plan), not at the webhook's start."""
    import pytest
    from pydantic import ValidationError

    from infra.config import Settings

    with pytest.raises(ValidationError, match="webhook_secret must be 32-256"):
        Settings.model_validate({"telegram": {"mode": "webhook", "webhook_url": "https://x.example/h",
                                              "webhook_secret": "short"}})
    with pytest.raises(ValidationError, match="needs webhook_url"):
        Settings.model_validate({"telegram": {"mode": "webhook"}})
    ok = Settings.model_validate({"telegram": {"mode": "webhook", "webhook_url": "https://x.example/h"}})
    assert ok.telegram.webhook_secret.get_secret_value() == ""  # one is made at the first start
