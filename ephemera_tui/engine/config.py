"""Settings, read once: defaults < config file (TOML) < ``EPHEMERA_*`` variables < CLI flags.

The config file is ``$EPHEMERA_CONFIG`` or ``<platformdirs user config dir>/ephemera/config.toml``.
Every field of :class:`Settings` can be set at the file's top level (or in its ``[ephemera]``
table) and as ``EPHEMERA_<FIELD>`` in the environment; ``[keys]`` remaps app keys and
``[migration.meilisearch]`` configures the MeiliSearch migration (parsed by
:mod:`ephemera_tui.migration.config` from :attr:`Settings.meilisearch`). Every value is
checked here, where it enters: a bad one is one line naming the file, variable or flag.

Plain dataclasses rather than pydantic-settings: importing pydantic costs ~65 ms on this
machine and every command reads settings; the checks below are the whole need.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import ConfigError

APP_NAME = "ephemera"
ENV_PREFIX = "EPHEMERA_"


def default_data_dir() -> Path:
    """The platform's user data dir (``~/.local/share/ephemera`` on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_config_path() -> Path:
    """The platform's config file (``~/.config/ephemera/config.toml`` on Linux)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Everything the engine and the app can be configured with (docs/configuration.md)."""

    data_dir: Path = field(default_factory=default_data_dir)
    """SQLite file, embedded vectors, model cache, metrics, logs, backups by default."""
    database_url: str | None = None
    """``sqlite:///PATH`` or ``mysql+pymysql://USER:PASS@HOST:PORT/DB``; unset: SQLite in
    the data dir."""
    database_read_urls: tuple[str, ...] = ()
    """MySQL/MariaDB read replicas of ``database_url`` (TOML list, or comma-separated in
    ``EPHEMERA_DATABASE_READ_URLS``): search, browse, timeline and report reads go there;
    writes, and a process's reads until a replica has applied its writes, go to the
    primary."""
    replica_max_lag_s: float = 5.0
    """A replica further behind than this (seconds), stopped or unreachable is skipped with a
    notice until it catches up."""
    qdrant_url: str | None = None
    """A Qdrant server URL; unset: the embedded qdrant-edge shard in the data dir."""
    qdrant_api_key: str | None = None
    """The Qdrant server's API key."""
    qdrant_shards: int = 1
    """Shards of a server collection when Ephemera creates it (a cluster spreads them over
    its nodes); an existing collection keeps its own."""
    qdrant_replication_factor: int = 1
    """Copies of each shard a server collection is created with."""
    qdrant_write_consistency: int = 1
    """Replicas that must acknowledge a write (the collection's write consistency factor, at
    most ``qdrant_replication_factor``)."""
    qdrant_write_ordering: str = "weak"
    """The ordering of vector writes on a cluster: ``weak``, ``medium`` or ``strong``."""
    embedding_model: str = "ephemera/all-MiniLM-L6-v2-int8"
    """The offline default, any fastembed model name, or ``path:DIR`` (ONNX + tokenizer)."""
    embedding_url: str | None = None
    """An OpenAI-compatible embeddings endpoint to embed with instead of a local model
    (another host's ``ephemera serve``, TEI, Infinity, Ollama, vLLM)."""
    embedding_api_key: str | None = None
    """Bearer token for ``embedding_url``."""
    embedding_cache_size: int = 4096
    """Entries in the embedding LRU cache (0 turns it off)."""
    query_precision: str = "int8"
    """How the default model embeds search queries in the app and the service: ``int8``
    (integer arithmetic on its own int8 weights, about twice as fast) or ``float``."""
    search_candidates: int = 100
    """Candidates taken from each side of hybrid search before fusion."""
    semantic_weight: float = 0.45
    """Weight of the semantic side in score fusion (0 keyword only, 1 semantic only)."""
    fusion: str = "score"
    """``score`` (min-max normalised scores) or ``rrf`` (reciprocal rank fusion)."""
    rrf_k: int = 2
    """The RRF constant (with ``fusion = "rrf"``): chosen leave-one-dataset-out, it helps on
    the dataset it was not tuned on both ways (docs/search.md); 60 is the textbook value."""
    keyword_budget: int = 2000
    """FTS5 postings scored per query before the commonest words are left out (0: no cap)."""
    hnsw_ef: int = 128
    """Search-time HNSW beam width."""
    index_threshold: int = 20_000
    """Unindexed vectors after which the worker builds the HNSW index in the background;
    0 never."""
    sync_interval: float = 1.0
    """Seconds between upkeep runs in the app."""
    worker_slices: int = 1
    """1: one upkeep worker at a time does everything (others stand by); more: the outbox
    and the cross-check are split into this many slices, each leased by one worker, so
    several ``ephemera worker`` processes share the work."""
    worker_lease_s: float = 30.0
    """Seconds a worker's lease lasts without renewal: how soon a killed worker's work is
    taken over."""
    backup_dir: Path | None = None
    """Where backups go (``ephemera backup`` and the scheduled ones); unset:
    ``<data_dir>/backups``."""
    backup_every_hours: float = 24.0
    """Hours between scheduled backups by the worker (app or ``ephemera worker``); 0: off."""
    keys: Mapping[str, str] = field(default_factory=dict)
    """App key remapping: action id -> keys (the ``[keys]`` table)."""
    theme: str | None = None
    """The app's theme name."""
    service: str = "auto"
    """``auto``: use a running resident engine for this data dir when one answers (and let
    the app serve other processes); ``off``: always work in-process."""
    service_url: str | None = None
    """A resident engine over TCP (``http://HOST:PORT``) instead of the data dir's socket."""
    service_token: str | None = None
    """The bearer token a TCP service requires (and ``ephemera serve --listen`` demands)."""
    meilisearch: Mapping[str, Any] = field(default_factory=dict)
    """The raw ``[migration.meilisearch]`` table (checked by the migration package)."""
    config_path: Path | None = None
    """The config file these settings were read from (None: none existed)."""

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ephemera.db'}"

    @property
    def vectors_path(self) -> Path:
        """The default embedded shard's directory."""
        return self.data_dir / "vectors" / "ephemera_memory_vectors"

    @property
    def backup_root(self) -> Path:
        """Where backup sets go: ``backup_dir``, else ``<data_dir>/backups``."""
        return self.backup_dir or self.data_dir / "backups"

    @property
    def resolved_backup_dir(self) -> Path | None:
        """Where scheduled backups go, or None when they are turned off."""
        if self.backup_every_hours <= 0:
            return None
        return self.backup_root

    @property
    def model_cache_dir(self) -> Path:
        """Where the assembled model folders live."""
        return self.data_dir / "models"

    @property
    def log_path(self) -> Path:
        """The engine's log file (warnings and what it recovers from)."""
        return self.data_dir / "ephemera.log"


# Fields that are not read from the environment or the file's top level as plain values.
_TABLES = ("keys", "meilisearch", "config_path")
_FIELDS = {f.name: f for f in fields(Settings) if f.name not in _TABLES}

# Inclusive ranges of the numeric settings; every float must also be finite.
_RANGES: dict[str, tuple[float, float]] = {
    "embedding_cache_size": (0, 10_000_000),
    "search_candidates": (1, 100_000),
    "semantic_weight": (0.0, 1.0),
    "rrf_k": (1, 1_000_000),
    "keyword_budget": (0, 1_000_000_000),
    "hnsw_ef": (1, 100_000),
    "index_threshold": (0, 1_000_000_000),
    "sync_interval": (0.05, 86_400.0),
    "backup_every_hours": (0.0, 24.0 * 3650),
    "replica_max_lag_s": (0.0, 86_400.0),
    "qdrant_shards": (1, 1024),
    "qdrant_replication_factor": (1, 64),
    "qdrant_write_consistency": (1, 64),
    "worker_slices": (1, 1024),
    "worker_lease_s": (1.0, 86_400.0),
}
_CHOICES = {
    "fusion": ("score", "rrf"),
    "service": ("auto", "off"),
    "qdrant_write_ordering": ("weak", "medium", "strong"),
    "query_precision": ("int8", "float"),
}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert a raw value to the type of setting ``name``; a one-line ConfigError if bad."""
    kind = str(_FIELDS[name].type)
    try:
        if value is None:
            return None
        if kind.startswith("tuple"):
            return _url_list(value)
        if "Path" in kind:
            return Path(str(value)).expanduser()
        if kind.startswith("int"):
            if isinstance(value, bool | float):
                raise ValueError("expected a whole number")
            number: float = int(str(value).strip())
        elif kind.startswith("float"):
            if isinstance(value, bool):
                raise ValueError("expected a number")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("expected a finite number")
        else:
            if not isinstance(value, str):
                raise ValueError("expected a string")
            text = value.strip()
            if name in _CHOICES and text not in _CHOICES[name]:
                raise ValueError(f"expected one of {', '.join(_CHOICES[name])}")
            if name == "database_url":
                _check_database_url(text)
            return text or None
        low, high = _RANGES.get(name, (-math.inf, math.inf))
        if not low <= number <= high:
            raise ValueError(f"expected {low:g} to {high:g}")
        return number
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{source}: bad value {value!r} for {name}: {exc}") from exc


def _check_database_url(url: str) -> None:
    """Refuse URLs that cannot hold a journal, with the fix in the message."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("mysql", "mariadb"):
        raise ValueError("name the driver: mysql+pymysql://USER:PASS@HOST:PORT/DB")
    if scheme == "sqlite" and url.rstrip("/") in ("sqlite:", "sqlite:/") or ":memory:" in url:
        raise ValueError("an in-memory SQLite database keeps nothing; use sqlite:///PATH")
    if scheme.startswith("mysql") and "/" not in url.split("://", 1)[1].split("?")[0].rstrip("/"):
        raise ValueError("the URL names no database: mysql+pymysql://USER@HOST:PORT/DB")
    if scheme.startswith("mysql") and "?" in url:
        from urllib.parse import parse_qsl

        for key, value in parse_qsl(url.split("?", 1)[1], keep_blank_values=True):
            if key not in _MYSQL_URL_ARGS:
                raise ValueError(
                    f"unknown URL argument {key!r} (known: {', '.join(sorted(_MYSQL_URL_ARGS))})"
                )
            if key == "charset" and value.lower() not in ("utf8mb4", "utf8mb3", "utf8"):
                raise ValueError(f"charset {value!r}: a journal needs charset=utf8mb4")


# The query arguments a mysql+pymysql:// URL may carry (SQLAlchemy's and pymysql's).
_MYSQL_URL_ARGS = frozenset(
    {
        "charset",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "unix_socket",
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "ssl_verify_cert",
        "ssl_verify_identity",
        "ssl_disabled",
        "init_command",
        "local_infile",
        "binary_prefix",
        "auth_plugin_map",
        "program_name",
        "server_public_key",
        "client_flag",
    }
)


def _url_list(value: Any) -> tuple[str, ...]:
    """A list of database URLs: a TOML list, or one comma-separated string (the
    environment); each must be a MySQL/MariaDB URL naming its driver and database."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of URLs")
    urls = tuple(i.strip() for i in items if i.strip())
    for url in urls:
        _check_database_url(url)
        if not url.lower().startswith(("mysql+", "mariadb+")):
            raise ValueError(f"{url.split('://')[0]}: read replicas are MySQL/MariaDB URLs")
    return urls


def _check_combined(settings: Settings) -> None:
    """Checks that involve two settings (one line naming both)."""
    if settings.database_read_urls and not settings.resolved_database_url.lower().startswith(
        ("mysql+", "mariadb+")
    ):
        raise ConfigError(
            "database_read_urls: read replicas need a MySQL/MariaDB database_url (the primary)"
        )
    if settings.qdrant_write_consistency > settings.qdrant_replication_factor:
        raise ConfigError(
            f"qdrant_write_consistency {settings.qdrant_write_consistency} exceeds "
            f"qdrant_replication_factor {settings.qdrant_replication_factor}: a write cannot "
            "wait for more replicas than there are"
        )


def _keys_table(value: Any, source: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f'{source}: [keys] must be a table of action = "keys"')
    return {str(k): str(v) for k, v in value.items()}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Merge the four layers into one Settings. ``overrides`` are CLI flags (None = unset)."""
    env = os.environ if env is None else env
    path = config_path or (Path(env["EPHEMERA_CONFIG"]) if env.get("EPHEMERA_CONFIG") else None)
    explicit = path is not None
    path = path or default_config_path()
    values: dict[str, Any] = {}
    if path.is_file():
        data = _read_file(path)
        table = data.get("ephemera", data)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [ephemera] must be a table")
        for key, value in table.items():
            if key in ("migration", "ephemera"):
                continue
            if key == "keys":
                values["keys"] = MappingProxyType(_keys_table(value, str(path)))
                continue
            if key not in _FIELDS:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, value, str(path))
        migration = data.get("migration", {})
        if not isinstance(migration, dict):
            raise ConfigError(f"{path}: [migration] must be a table")
        meili = migration.get("meilisearch", {})
        if not isinstance(meili, dict):
            raise ConfigError(f"{path}: [migration.meilisearch] must be a table")
        values["meilisearch"] = MappingProxyType(meili)
        values["config_path"] = path
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    for name in _FIELDS:
        raw = env.get(f"{ENV_PREFIX}{name.upper()}")
        if raw not in (None, ""):
            values[name] = _coerce(name, raw, f"{ENV_PREFIX}{name.upper()}")
    if env.get(f"{ENV_PREFIX}KEYS"):
        raise ConfigError(
            f"{ENV_PREFIX}KEYS: key remapping is read from the config file's [keys] table only"
        )
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    settings = Settings(**values)
    _check_combined(settings)
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise ConfigError(f"data dir {settings.data_dir} is a file, not a directory")
    return settings
