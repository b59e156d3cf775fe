"""The sections of the configuration (`[server]`, `[database]`, ...): one class per section,
each option with its default, bounds and description (docs/config.md is generated from them).
`enclave.config` assembles them into `Config` and reads the sources."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    """The base of every section: unknown options are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Section):
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free port.")
    data_dir: Path = Field(Path("data"), description="Directory for the SQLite file and state.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest log level written."
    )
    access_log: bool = Field(
        False,
        description="Log one line per HTTP request (sensitive query parameters redacted).",
    )
    trusted_proxies: list[str] = Field(
        [],
        description="Networks (CIDR, e.g. 10.0.0.0/8; comma-separated in the environment) of "
        "TLS-terminating reverse proxies in front of Enclave. Setting it allows plain HTTP on a "
        "non-loopback address, and X-Forwarded-For is believed only from these peers.",
    )

    metrics_token: str = Field(
        "",
        description="Bearer token that GET /metrics requires from every caller; empty: /metrics "
        "answers only direct loopback connections without proxy headers (docs/operations.md).",
        repr=False,
    )

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: str) -> str:
        if value and (len(value) < 16 or not value.isprintable() or " " in value):
            raise ValueError("must be empty or at least 16 printable characters without spaces")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: "a/8, b/16" or a TOML-style list
            text = value.strip()
            if text.startswith("["):
                return tomllib.loads(f"v = {text}")["v"]
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return networks


class DatabaseConfig(Section):
    url: str = Field(
        "",
        description="Empty for SQLite at data_dir/enclave.db, sqlite:///PATH for another SQLite "
        "file, or postgresql://user@host:port/dbname.",
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full",
        description="full: every acknowledged write survives power loss; normal: it survives "
        "a process crash only.",
    )
    pool_size: int = Field(8, ge=1, le=256, description="PostgreSQL connections per process.")
    sqlite_readers: int = Field(2, ge=1, le=64, description="SQLite reader threads.")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise ValueError("must be empty, sqlite:///PATH or postgresql://...")
        return value


class AuthConfig(Section):
    session_idle_minutes: int = Field(
        60 * 24 * 14, ge=5, description="A session unused this long expires."
    )
    session_absolute_days: int = Field(
        30, ge=1, le=365, description="A session expires this long after login, used or not."
    )
    min_password_length: int = Field(12, ge=8, le=128, description="Shortest password accepted.")
    argon2_time_cost: int = Field(3, ge=2, le=20, description="Argon2id iterations.")
    argon2_memory_kib: int = Field(
        65536, ge=19456, le=4 * 1024 * 1024, description="Argon2id memory per hash, KiB."
    )
    argon2_parallelism: int = Field(1, ge=1, le=16, description="Argon2id lanes.")
    # Login lockout (services/lockout.py, docs/config.md): per (account, address) pair, per
    # address, and a per-account lock that addresses with a recent successful login are exempt from.
    lockout_failures: int = Field(
        5,
        ge=1,
        le=1_000_000,
        description="Failed logins for one account from one address before that pair is locked.",
    )
    lockout_ip_failures: int = Field(
        20,
        ge=1,
        le=1_000_000,
        description="Failed logins from one address (any account) before the address is locked.",
    )
    lockout_account_failures: int = Field(
        100,
        ge=1,
        le=10_000_000,
        description="Failed logins for one account from all addresses before the account is "
        "locked for every address without a recent successful login.",
    )
    lockout_window_minutes: int = Field(
        60,
        ge=1,
        le=7 * 24 * 60,
        description="A failure counter starts again after this long without a failure.",
    )
    lockout_base_seconds: int = Field(
        30, ge=1, le=86_400, description="First lockout delay; doubles per further failure."
    )
    lockout_max_seconds: int = Field(
        900, ge=1, le=86_400, description="Longest lockout delay (the doubling stops here)."
    )
    lockout_trusted_days: int = Field(
        30,
        ge=0,
        le=365,
        description="How long a successful login exempts its address from the per-account lock.",
    )


class LimitsConfig(Section):
    max_body_bytes: int = Field(
        256 * 1024, ge=1024, le=64 * 1024 * 1024, description="Largest request body accepted."
    )
    message_max_chars: int = Field(
        16000, ge=1, le=100000, description="Longest message text, in characters."
    )
    page_max: int = Field(200, ge=1, le=1000, description="Largest `limit` for any list.")
    group_max_members: int = Field(
        1000,
        ge=2,
        le=100000,
        description="Most members of a group chat or channel (creating, adding, joining).",
    )
    # Request rate limits (token buckets); refused with 429 `rate_limited` and Retry-After.
    ip_per_second: float = Field(
        50.0, gt=0, le=1_000_000, description="Sustained REST requests per second per address."
    )
    ip_burst: int = Field(200, ge=1, le=10_000_000, description="REST burst per address.")
    user_per_second: float = Field(
        20.0, gt=0, le=1_000_000, description="Sustained REST requests per second per user."
    )
    user_burst: int = Field(100, ge=1, le=10_000_000, description="REST burst per user.")
    login_per_minute: float = Field(
        10.0, gt=0, le=1_000_000, description="Login attempts per minute per address."
    )
    login_burst: int = Field(10, ge=1, le=10_000_000, description="Login burst per address.")
    send_per_second: float = Field(
        10.0,
        gt=0,
        le=1_000_000,
        description="Messages sent per second per user, REST and WebSocket together.",
    )
    send_burst: int = Field(30, ge=1, le=10_000_000, description="Message send burst per user.")


class RealtimeConfig(Section):
    heartbeat_seconds: float = Field(
        30.0,
        ge=1,
        le=600,
        description="Server ping interval; a peer silent for half of it more is dropped.",
    )
    hello_timeout_seconds: float = Field(
        10.0, ge=1, le=120, description="Time a new WebSocket has to send its `hello` frame."
    )
    max_frame_bytes: int = Field(
        256 * 1024, ge=4096, le=16 * 1024 * 1024, description="Largest frame a client may send."
    )
    max_buffer_bytes: int = Field(
        1024 * 1024,
        ge=16 * 1024,
        le=256 * 1024 * 1024,
        description="Outgoing bytes queued for one connection before it is dropped as too slow.",
    )
    rate_per_second: float = Field(
        50.0, ge=1, le=100000, description="Sustained frames per second one connection may send."
    )
    rate_burst: int = Field(
        200, ge=1, le=1000000, description="Frames one connection may send in a burst."
    )
    max_sockets_per_session: int = Field(
        24,
        ge=1,
        le=100_000,
        description="Most open WebSockets of one session on one node; more are closed with 4011.",
    )
    max_sockets_per_user: int = Field(
        48,
        ge=1,
        le=100_000,
        description="Most open WebSockets of one person (all sessions) on one node; more are "
        "closed with 4011.",
    )
    max_replay_events: int = Field(
        10000,
        ge=100,
        le=10_000_000,
        description="Most events replayed for one conversation on resume; beyond it the client "
        "is told to re-sync that conversation through REST.",
    )
    session_check_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="How often open sockets re-check their session and account (logout, "
        "expiry, deactivation, role changes or new terms made by another process, or whose "
        "signal this node missed, reach them within this time).",
    )
    max_inflight_sends: int = Field(
        64, ge=1, le=10000, description="Sends one connection may have awaiting the database."
    )


class TlsConfig(Section):
    cert_file: str = Field(
        "",
        description="PEM file with the server certificate followed by its intermediates; "
        "empty: none. Set it together with tls.key_file to serve HTTPS and WSS.",
    )
    key_file: str = Field(
        "", description="PEM file with the private key of tls.cert_file; empty: none."
    )
    self_signed: bool = Field(
        False,
        description="For trials: without tls.cert_file, serve HTTPS with a self-signed "
        "certificate generated on first start into data_dir/tls/ (its SHA-256 fingerprint is "
        "printed at start).",
    )

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("tls.cert_file and tls.key_file must be set together")
        return self

    @property
    def enabled(self) -> bool:
        """HTTPS is served: from certificate files, or else a self-signed certificate."""
        return bool(self.cert_file) or self.self_signed


class EncryptionConfig(Section):
    key_file: str = Field(
        "",
        description="Keyring file holding the key-encryption keys (created with mode 0600 on "
        "first start when absent); empty: data_dir/keys/keyring.json. Without it the data "
        "cannot be read: back it up apart from the database (docs/security.md).",
    )
    key: str = Field(
        "",
        description="Instead of a keyring file: one key-encryption key, base64 of 32 random "
        "bytes, usually given as ENCLAVE_ENCRYPTION_KEY by a secret store. It cannot be "
        "rotated in place; `enclave keys generate` prints one.",
        repr=False,
    )
    epoch_days: int = Field(
        30,
        ge=1,
        le=3660,
        description="Length of a data-key epoch: each conversation gets a new data key per "
        "epoch, so retention can shred old epochs without touching newer messages.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EncryptionConfig:
        if self.key and self.key_file:
            raise ValueError("set encryption.key_file or encryption.key, not both")
        return self


class AlertsConfig(Section):
    # Alerts derived from audit entries (services/alerts.py, docs/security.md): each rule counts
    # matching entries per key in a sliding window; 0 switches a rule off.
    window_seconds: int = Field(
        300, ge=10, le=86_400, description="Sliding window in which alert rules count entries."
    )
    failed_logins_per_ip: int = Field(
        20,
        ge=0,
        le=1_000_000,
        description="Failed logins from one address within the window that raise "
        "`alert.failed_logins_ip`; 0: off.",
    )
    failed_logins_per_account: int = Field(
        10,
        ge=0,
        le=1_000_000,
        description="Failed logins for one account (from any address) within the window that "
        "raise `alert.failed_logins_account`; 0: off.",
    )
    deletions_per_actor: int = Field(
        50,
        ge=0,
        le=1_000_000,
        description="Messages recalled or deleted by one person within the window that raise "
        "`alert.mass_deletion`; 0: off.",
    )
    exports_per_actor: int = Field(
        5,
        ge=0,
        le=1_000_000,
        description="Exports (`export.*` entries) by one person within the window that raise "
        "`alert.mass_export`; 0: off.",
    )


class ComplianceConfig(Section):
    export_ttl_hours: int = Field(
        24,
        ge=1,
        le=24 * 90,
        description="eDiscovery exports hold plaintext: their files in data_dir/exports/ are "
        "deleted this many hours after the export finished.",
    )


class RetentionConfig(Section):
    # Retention runs (services/retention/, docs/compliance.md): what they delete is set per
    # organization through the API; these only say how often and in what steps.
    interval_minutes: int = Field(
        60,
        ge=0,
        le=7 * 24 * 60,
        description="How often retention runs, as the periodic job `retention.run` (one job "
        "per period for the whole cluster); 0: never (run `enclave retention run` instead).",
    )
    batch_size: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Messages deleted per transaction by a retention run; an interrupted run "
        "resumes after the last finished batch.",
    )
    lease_seconds: int = Field(
        300,
        ge=10,
        le=86_400,
        description="How long a run's claim on retention (the lease that keeps scheduled and "
        "manual runs apart) lasts without renewal (it renews after every batch); a process "
        "that dies frees the run after this long.",
    )


class JobsConfig(Section):
    # The durable job queue (services/jobs.py, docs/architecture.md "The job path"): every node
    # runs workers that claim due jobs from the database with a lease.
    poll_seconds: float = Field(
        1.0,
        ge=0.01,
        le=60,
        description="How often an idle worker looks for due jobs (and a node for periodic work "
        "to enqueue).",
    )
    lease_seconds: float = Field(
        60.0,
        ge=0.5,
        le=86_400,
        description="How long a worker's claim on a job lasts without renewal (it renews every "
        "third of it while the job runs); a node that dies frees its jobs after this long.",
    )
    max_attempts: int = Field(
        5,
        ge=1,
        le=100,
        description="Attempts of a job before it is dead, for kinds that set none themselves.",
    )
    concurrency: int = Field(
        4,
        ge=1,
        le=256,
        description="Jobs of one kind a node runs at once, for kinds that set no limit.",
    )
    retry_base_seconds: float = Field(
        10.0,
        ge=0.01,
        le=86_400,
        description="Delay before the first retry of a failed job; it doubles per attempt, with "
        "random jitter of up to half of it.",
    )
    retry_max_seconds: float = Field(
        3600.0, ge=0.01, le=7 * 86_400, description="Longest delay between two attempts."
    )
    keep_finished_hours: int = Field(
        7 * 24,
        ge=1,
        le=24 * 3660,
        description="Done and cancelled jobs are deleted this long after they finished (dead and "
        "failed jobs stay until an operator retries or cancels them).",
    )

    @model_validator(mode="after")
    def _retry_bounds(self) -> JobsConfig:
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError("jobs.retry_max_seconds must not be less than jobs.retry_base_seconds")
        return self


class RedisConfig(Section):
    # Scale-out (enclave.bus.redis, docs/operations.md): with a URL, nodes share events, rate
    # limits, login lockouts, presence and alert counters through one Redis.
    url: str = Field(
        "",
        description="Empty: one node, everything in this process's memory. redis://host:6379/0 "
        "(rediss:// for TLS, unix:///path.sock): nodes share events, rate limits, lockouts, "
        "presence and alert counters through this Redis.",
        repr=False,
    )
    prefix: str = Field(
        "enclave:",
        min_length=1,
        max_length=64,
        description="Prefix of every Redis key and channel Enclave uses, so that several "
        "clusters (or test runs) can share one Redis.",
    )
    timeout_seconds: float = Field(
        1.0,
        ge=0.05,
        le=30,
        description="How long a Redis command may take before Redis counts as lost; the node "
        "then serves on with this process's memory and reconnects in the background.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty, redis://..., rediss://... or unix://...")
        return value

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not value.isprintable() or any(ch in value for ch in " *?[]"):
            raise ValueError("must be printable, without spaces or glob characters (*?[])")
        return value


class OrgConfig(Section):
    name: str = Field(
        "My Organization", min_length=1, max_length=100, description="Name of the first org."
    )
    owner_username: str = Field(
        "admin", min_length=3, max_length=32, description="Username of the first owner."
    )
