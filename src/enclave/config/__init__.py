"""One validated configuration object, read once at start-up.

Sources, lowest precedence first: built-in defaults, a TOML file (`--config` or
`ENCLAVE_CONFIG`), environment variables `ENCLAVE_<SECTION>_<OPTION>` (for example
`ENCLAVE_SERVER_PORT=9000`), then command-line flags. Every option is documented in
docs/config.md, and a test checks that the two agree.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from enclave.config.sections import (
    AlertsConfig,
    AuthConfig,
    ComplianceConfig,
    DatabaseConfig,
    EncryptionConfig,
    JobsConfig,
    LimitsConfig,
    OrgConfig,
    RealtimeConfig,
    RedisConfig,
    RetentionConfig,
    Section,
    ServerConfig,
    TlsConfig,
)


class Config(Section):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    auth: AuthConfig = AuthConfig()
    limits: LimitsConfig = LimitsConfig()
    realtime: RealtimeConfig = RealtimeConfig()
    tls: TlsConfig = TlsConfig()
    encryption: EncryptionConfig = EncryptionConfig()
    alerts: AlertsConfig = AlertsConfig()
    compliance: ComplianceConfig = ComplianceConfig()
    retention: RetentionConfig = RetentionConfig()
    jobs: JobsConfig = JobsConfig()
    redis: RedisConfig = RedisConfig()
    org: OrgConfig = OrgConfig()

    def keyring_path(self) -> Path:
        if self.encryption.key_file:
            return Path(self.encryption.key_file)
        return self.server.data_dir / "keys" / "keyring.json"

    def sqlite_path(self) -> Path:
        url = self.database.url
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///"))
        return self.server.data_dir / "enclave.db"

    @property
    def uses_postgres(self) -> bool:
        return self.database.url.startswith(("postgresql://", "postgres://"))

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis.url)


class ConfigError(Exception):
    """A configuration value is invalid; the message names each option."""


SECTIONS: dict[str, type[Section]] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "auth": AuthConfig,
    "limits": LimitsConfig,
    "realtime": RealtimeConfig,
    "tls": TlsConfig,
    "encryption": EncryptionConfig,
    "alerts": AlertsConfig,
    "compliance": ComplianceConfig,
    "retention": RetentionConfig,
    "jobs": JobsConfig,
    "redis": RedisConfig,
    "org": OrgConfig,
}


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration; raise ConfigError naming every bad option."""
    env = os.environ if env is None else env
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    path = path or (Path(env["ENCLAVE_CONFIG"]) if env.get("ENCLAVE_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for section, values in data.items():
            if section not in SECTIONS:
                raise ConfigError(f"{section}: unknown section in {path}")
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: must be a table")
            raw[section].update(values)
    for key, value in env.items():
        if not key.startswith("ENCLAVE_") or key == "ENCLAVE_CONFIG":
            continue
        section, _, option = key.removeprefix("ENCLAVE_").lower().partition("_")
        if section in SECTIONS and option in SECTIONS[section].model_fields:
            raw[section][option] = value
        elif section in SECTIONS:
            raise ConfigError(f"{section}.{option}: unknown option (from {key})")
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, option = dotted.partition(".")
        raw[section][option] = value
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from exc
