"""Every knob of fastdeploy, declared once.

Each field becomes an environment variable ``FASTDEPLOY_<FIELD>`` and a click
option ``--<field>``; ``/meta`` prints the whole object. Units live in the
names so a value never needs a comment to be read.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

ENV_PREFIX = "FASTDEPLOY_"


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    # API
    host: str = _knob("127.0.0.1", "Address the API binds to (0.0.0.0 to serve other machines).")
    port: int = _knob(8080, "Port the API listens on.")
    workers: int = _knob(2, "API worker processes (gunicorn, gevent); each serves many connections.")
    worker_connections: int = _knob(1000, "Concurrent connections per API worker.")
    max_body_bytes: int = _knob(10 * 1024 * 1024, "Largest request body accepted; larger gets 413.")
    max_inputs: int = _knob(1024, "Most inputs (or uploaded files) one request may carry; more gets 413.")
    max_upload_bytes: int = _knob(100 * 1024 * 1024, "Largest multipart upload (all its files); larger gets 413.")
    timeout_s: float = _knob(60.0, "Default time a /sync request waits for its results before 504.")
    max_timeout_s: float = _knob(3600.0, "Largest per-request 'timeout' a client may ask for.")
    retry_after_s: int = _knob(1, "Retry-After seconds sent with 503 when the queue is full.")
    body_timeout_s: float = _knob(30.0, "Longest a client may take to send a request body; slower gets 408.")
    # access
    api_keys: str = _knob("", "Comma-separated keys accepted as 'Authorization: Bearer KEY'; empty: no auth.")
    open_paths: str = _knob("/health,/ready", "Paths served without a key when api_keys is set (probes).")
    certfile: str = _knob("", "TLS certificate (PEM) for the API; with keyfile, the API speaks HTTPS only.")
    keyfile: str = _knob("", "TLS private key (PEM) for certfile.")
    # queue
    store_dir: str = _knob("", "Folder of the embedded queue; empty means /dev/shm/fastdeploy/<recipe>.")
    store_url: str = _knob("", "redis://host:port/db of a Redis shared by API and loop hosts; "
                               "empty: the embedded queue.")
    store_connections: int = _knob(64, "Most Redis connections per process; more concurrent calls wait "
                                       "for a free one.")
    store_namespace: str = _knob("", "Name of the recipe's keys in the shared Redis; "
                                     "empty means the recipe folder's name.")
    max_queue_length: int = _knob(10000, "Most inputs waiting or running at once; past it /sync and /async get 503.")
    result_ttl_s: float = _knob(3600.0, "How long a finished result stays retrievable.")
    lease_s: float = _knob(30.0, "A claimed batch not renewed for this long is claimed again (its loop died).")
    max_attempts: int = _knob(3, "Claims of one input before it is failed as poison (its loop kept dying).")
    sweep_interval_s: float = _knob(10.0, "How often the loop deletes expired results.")
    # loop
    loops: int = _knob(1, "Loop processes per stage started by --run; all share one queue.")
    batch_size: int = _knob(0, "Fixed batch size; 0 tunes it at startup from measured timings.")
    max_batch_size: int = _knob(128, "Largest batch size the tuner tries.")
    max_batch_latency_ms: float = _knob(1000.0, "The tuner never picks a batch slower than this.")
    min_tuning_gain: float = _knob(0.1, "The tuner picks the smallest batch within this fraction of the best throughput.")
    max_wait_ms: float = _knob(10.0, "Longest a short batch waits for more inputs before it runs.")
    batch_idle_ms: float = _knob(2.0, "A short batch stops waiting once no input arrived for this long.")
    target_p99_ms: float = _knob(0.0, "Adapt each batch's size and wait so inputs spend at most this long (p99) in "
                                      "queue and predictor; 0 keeps the tuned size and max_wait_ms.")
    heartbeat_interval_s: float = _knob(1.0, "How often a loop reports itself alive and renews its leases.")
    loop_stale_s: float = _knob(10.0, "A loop silent this long no longer counts for /ready.")
    # webhooks
    webhook_secret: str = _knob("", "Key for the HMAC-SHA256 signature of webhook deliveries; empty: unsigned.")
    webhook_max_attempts: int = _knob(5, "Deliveries tried per webhook before it is recorded as failed.")
    webhook_timeout_s: float = _knob(10.0, "Time one webhook delivery may take.")
    webhook_backoff_s: float = _knob(1.0, "Wait before the first webhook retry; doubles each attempt.")
    # process
    graceful_timeout_s: float = _knob(30.0, "On SIGTERM, time given to finish running work before a kill.")
    log_level: str = _knob("info", "Logging level: debug, info, warning or error.")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and value < 0:
                raise ValueError(f"{f.name} is {value}; it must be 0 or more ({ENV_PREFIX}{f.name.upper()})")
        for name in ("port", "workers", "worker_connections", "max_body_bytes", "max_inputs", "max_upload_bytes",
                     "max_queue_length", "loops", "max_batch_size", "max_attempts", "store_connections",
                     "webhook_max_attempts", "lease_s", "timeout_s", "heartbeat_interval_s"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} is 0; it must be at least 1 ({ENV_PREFIX}{name.upper()})")
        if self.batch_size > self.max_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} is above max_batch_size {self.max_batch_size}; "
                f"raise {ENV_PREFIX}MAX_BATCH_SIZE or lower {ENV_PREFIX}BATCH_SIZE"
            )
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError(f"certfile and keyfile go together; set both {ENV_PREFIX}CERTFILE and "
                             f"{ENV_PREFIX}KEYFILE, or neither")
        if self.store_url and not self.store_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"store_url {self.store_url!r} is not a Redis URL; use redis://host:port/db, "
                             "rediss:// (TLS) or unix:///path/to/redis.sock")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError(f"log_level is {self.log_level!r}; use debug, info, warning or error")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from ``FASTDEPLOY_*`` variables; explicit overrides win."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = parse_value(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that recreates these settings in a child process."""
        return {ENV_PREFIX + k.upper(): str(v) for k, v in dataclasses.asdict(self).items()}

    def public(self) -> dict[str, Any]:
        """Settings safe to show on /meta: secrets are masked."""
        shown = dataclasses.asdict(self)
        for secret in ("webhook_secret", "api_keys"):
            if shown[secret]:
                shown[secret] = "***"
        return shown

    def key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    def open_path_list(self) -> list[str]:
        return [path.strip() for path in self.open_paths.split(",") if path.strip()]


def parse_value(f: dataclasses.Field, raw: str) -> Any:
    """Turn an environment string into the field's type, naming the variable on failure."""
    kind = {"int": int, "float": float, "str": str}[f.type]
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {f.type}") from None


def settings_table() -> str:
    """The Markdown table of every setting in docs/configuration.md: ``python -m fastdeploy.settings``."""
    rows = ["| setting | env var | CLI option | default | what it does |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = '""' if f.default == "" else f.default
        rows.append(f"| `{f.name}` | `{ENV_PREFIX}{f.name.upper()}` | `--{f.name.replace('_', '-')}` | `{default}` "
                    f"| {f.metadata['help']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
