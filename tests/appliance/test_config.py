from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import Config, ConfigError, load_config, parse_config, resolve_data_dir


def test_defaults_are_safe() -> None:
    config = load_config(None)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.max_body_bytes == 1024 * 1024
    assert config.local.embedding_model == "all-minilm-l6-v2"


def test_values_are_read() -> None:
    config = parse_config('[server]\nhost = "0.0.0.0"\nport = 9000\n[local]\npool_size = 3\n')
    assert (config.server.host, config.server.port, config.local.pool_size) == ("0.0.0.0", 9000, 3)
    assert config.server.shutdown_grace_seconds == 30.0  # untouched keys keep defaults


@pytest.mark.parametrize(("text", "message"), [
    ("[server]\nport = 'x'\n", "key `server.port`: expected `int`, got `str`"),
    ("[server]\nport = 70000\n", "key `server.port`"),
    ("[server]\nbogus = 1\n", "unknown key `server.bogus`"),
    ("bogus = 1\n", "unknown key `bogus`"),
    ("[local]\nqueue_size = -1\n", "key `local.queue_size`"),
    ("[server]\nlog_level = 'loud'\n", "key `server.log_level`"),
    ("[server\n", "not valid TOML"),
])
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site.toml")
    assert str(info.value).startswith("site.toml: ")
    assert message in str(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = Config(data_dir="/srv/from-config")
    monkeypatch.delenv("APPLIANCE_DATA_DIR", raising=False)
    assert resolve_data_dir(None, Config()) == Path(".appliance")
    assert resolve_data_dir(None, configured) == Path("/srv/from-config")
    monkeypatch.setenv("APPLIANCE_DATA_DIR", "/srv/from-env")
    assert resolve_data_dir(None, configured) == Path("/srv/from-env")
    assert resolve_data_dir(Path("/srv/cli"), configured) == Path("/srv/cli")
