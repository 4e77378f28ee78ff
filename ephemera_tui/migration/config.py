"""The ``[migration.meilisearch]`` table of the config file (read here, not by Settings).

Keys: ``url``, ``key``, ``index``, ``read_mode`` (``meilisearch`` | ``ephemera`` |
``ephemera-with-fallback``), ``primary_key``, ``timeout`` (seconds), ``retry_seconds``,
``shadow`` (bool), ``vectors_model``, and a ``[migration.meilisearch.map]`` table of
``field = "target"``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.config import default_config_path
from ..engine.errors import ConfigError

READ_MODES = ("meilisearch", "ephemera", "ephemera-with-fallback")


@dataclass(frozen=True)
class MeiliConfig:
    url: str | None = None
    key: str | None = None
    index: str | None = None
    read_mode: str = "meilisearch"
    primary_key: str | None = None
    timeout: float = 2.0
    retry_seconds: float = 30.0
    shadow: bool = True
    vectors_model: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def live(self) -> bool:
        """True when a server is configured (dual writing and read routing are possible)."""
        return bool(self.url and self.index)


def config_path(explicit: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """The config file path the same way :func:`load_settings` resolves it."""
    env = dict(os.environ) if env is None else env
    if explicit is not None:
        return explicit
    if env.get("EPHEMERA_CONFIG"):
        return Path(env["EPHEMERA_CONFIG"])
    return default_config_path()


def load_meili_config(path: Path | None = None, env: dict[str, str] | None = None) -> MeiliConfig:
    """Read ``[migration.meilisearch]``; a missing file or table gives an unconfigured result."""
    resolved = config_path(path, env)
    if not resolved.exists():
        return MeiliConfig(path=resolved)
    try:
        data = tomllib.loads(resolved.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{resolved}: cannot read config file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{resolved}: invalid TOML: {exc}") from None
    table = data.get("migration", {})
    table = table.get("meilisearch", {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{resolved}: [migration.meilisearch] must be a table")
    return parse_table(table, resolved)


def parse_table(table: dict[str, Any], where: Path | None) -> MeiliConfig:
    known = {
        "url",
        "key",
        "index",
        "read_mode",
        "primary_key",
        "timeout",
        "retry_seconds",
        "shadow",
        "vectors_model",
        "map",
    }
    label = f"{where}: [migration.meilisearch]" if where else "[migration.meilisearch]"
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {', '.join(unknown)}")
    read_mode = str(table.get("read_mode", "meilisearch"))
    if read_mode not in READ_MODES:
        raise ConfigError(
            f"{label}: read_mode must be one of {', '.join(READ_MODES)}, got {read_mode!r}"
        )
    field_map = table.get("map", {})
    if not isinstance(field_map, dict) or not all(isinstance(v, str) for v in field_map.values()):
        raise ConfigError(f'{label}: map must be a table of field = "target"')
    try:
        timeout = float(table.get("timeout", 2.0))
        retry = float(table.get("retry_seconds", 30.0))
    except (TypeError, ValueError):
        raise ConfigError(f"{label}: timeout and retry_seconds must be numbers") from None
    shadow = table.get("shadow", True)
    if not isinstance(shadow, bool):
        raise ConfigError(f"{label}: shadow must be true or false")

    def text(name: str) -> str | None:
        value = table.get(name)
        return None if value in (None, "") else str(value)

    return MeiliConfig(
        url=text("url"),
        key=text("key"),
        index=text("index"),
        read_mode=read_mode,
        primary_key=text("primary_key"),
        timeout=timeout,
        retry_seconds=retry,
        shadow=shadow,
        vectors_model=text("vectors_model"),
        field_map={str(k): str(v) for k, v in field_map.items()},
        path=where,
    )
