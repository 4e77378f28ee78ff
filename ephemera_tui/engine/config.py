"""Settings: defaults < config file (TOML) < ``EPHEMERA_*`` environment variables < CLI flags.

The config file is ``$EPHEMERA_CONFIG`` or ``<platformdirs user config dir>/ephemera/config.toml``.
Every key of :class:`Settings` can be set in the file's top level (or its ``[ephemera]`` table)
and as ``EPHEMERA_<KEY>`` in the environment.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

APP_NAME = "ephemera"


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_config_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Everything the engine can be configured with."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None  # default: SQLite file in data_dir
    qdrant_url: str | None = None  # default: embedded qdrant-edge shard in data_dir
    qdrant_api_key: str | None = None
    embedding_model: str = "ephemera/all-MiniLM-L6-v2-int8"
    embedding_cache_size: int = 4096
    search_candidates: int = 100
    semantic_weight: float = 0.45
    fusion: str = "score"  # docs/search.md: min-max score fusion beat RRF on both dev sets
    rrf_k: int = 60
    keyword_budget: int = 2000  # FTS5 postings scored per query before common words drop
    hnsw_ef: int = 128
    index_threshold: int = 20_000  # unindexed vectors before a background HNSW build; 0: never
    sync_interval: float = 1.0
    backup_dir: Path | None = None  # default: <data_dir>/backups
    backup_every_hours: float = 24.0  # scheduled backups by the worker; 0 turns them off
    keys: dict[str, str] = field(default_factory=dict)  # UI key remapping: action id -> keys
    theme: str | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ephemera.db'}"

    @property
    def vectors_path(self) -> Path:
        return self.data_dir / "vectors" / "ephemera_memory_vectors"

    @property
    def resolved_backup_dir(self) -> Path | None:
        """Where scheduled backups go, or None when they are turned off."""
        if self.backup_every_hours <= 0:
            return None
        return self.backup_dir or self.data_dir / "backups"

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert a raw value to the type of setting ``name``; raise a one-line ConfigError."""
    kind = _FIELDS[name].type
    try:
        if name in ("data_dir", "backup_dir"):
            return None if value is None else Path(str(value)).expanduser()
        if name == "keys":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ValueError('expected a table of action = "keys"')
            return {str(k): str(v) for k, v in value.items()}
        if "int" in str(kind) and "str" not in str(kind):
            if isinstance(value, bool):
                raise ValueError("expected a whole number")
            return int(value)
        if "float" in str(kind):
            return float(value)
        if value is None:
            return None
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: bad value {value!r} for {name}: {exc}") from None


def load_settings(
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Merge the four layers into one Settings. ``overrides`` are CLI flags (None = unset)."""
    env = dict(os.environ) if env is None else env
    path = config_path or (Path(env["EPHEMERA_CONFIG"]) if env.get("EPHEMERA_CONFIG") else None)
    explicit = path is not None
    path = path or default_config_path()
    values: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        table = data.get("ephemera", data)
        for key, value in table.items():
            if key in ("migration", "ephemera"):
                continue
            if key not in _FIELDS:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, value, str(path))
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    for name in _FIELDS:
        raw = env.get(f"EPHEMERA_{name.upper()}")
        if raw not in (None, "") and name != "keys":
            values[name] = _coerce(name, raw, f"EPHEMERA_{name.upper()}")
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    settings = Settings(**values)
    if settings.fusion not in ("rrf", "score"):
        raise ConfigError(f"fusion must be 'rrf' or 'score', got {settings.fusion!r}")
    if not 0.0 <= settings.semantic_weight <= 1.0:
        raise ConfigError(f"semantic_weight must be from 0 to 1, got {settings.semantic_weight}")
    return settings
