"""Where footage and outputs live, when a file counts as arrived, how much of a landing tree
the sensor looks at and takes per tick, and the addresses where outputs and pages are served:
the storage settings (environment variables as listed; flags ``--<field>`` where the CLI
offers them)."""

import dataclasses

from vitcow_assets.core.settings import check, setting
from vitcow_assets.footage.layout import DEFAULT_HOME


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    home: str = setting(DEFAULT_HOME, "the storage root (relative paths are taken from the working directory)", env="VITCOW_HOME")
    landing_sources: str | None = setting(
        None, "the landing source(s): one folder or URL, or name=URL,... (default <home>/landing)", env="VITCOW_LANDING"
    )
    settle_seconds: float = setting(
        10.0, "a file has arrived once it looked the same twice and was last modified this long ago", env="VITCOW_SETTLE_SECONDS"
    )
    settle_timeout_seconds: float = setting(
        600.0, "vitcow run: how long to wait for a file given by name to finish arriving", env="VITCOW_SETTLE_TIMEOUT_SECONDS"
    )
    publish_to: str | None = setting(None, "where published_crops uploads outputs (off when unset)", env="VITCOW_PUBLISH", flag="--publish")
    path_patterns: str | None = setting(None, "how farm, camera and recording start are read from a path (';'-separated)", env="VITCOW_PATH_PATTERNS")
    intake_db: str | None = setting(
        None, "intake state database URL (default: the instance's Postgres when it is on Postgres, else <home>/intake/intake.db)", env="VITCOW_INTAKE_DB"
    )
    full_sweep_seconds: float = setting(
        600.0, "local sources: seconds between full sweeps (every file looked at); in between, only folders whose time changed are listed"
    )
    remote_look_seconds: float = setting(60.0, "SFTP and S3 sources: seconds between looks (the sensor ticks every 15 s)")
    remote_full_sweep_seconds: float = setting(3600.0, "SFTP and S3 sources: seconds between full sweeps")
    remote_active_seconds: float = setting(
        172800.0, "SFTP and S3 sources: folders with nothing new for this long are left to the full sweep between sweeps"
    )
    max_registrations_per_tick: int = setting(20, "files a sensor tick registers (hashes or downloads) at most; the rest wait, oldest first")
    max_runs_per_tick: int = setting(20, "runs a sensor tick requests at most")
    max_pending_runs: int = setting(
        40, "no new runs are requested while this many video runs are queued or in progress (at least the run queue's max_concurrent_runs)"
    )
    public_url: str | None = setting(
        None, "http(s) URL where the storage root is served, e.g. http://127.0.0.1:3001: the UI then links and shows contact sheets", env="VITCOW_PUBLIC_URL"
    )
    pages_url: str | None = setting(
        "http://127.0.0.1:8765", "http(s) URL of the platform's web server (vitcow label): the UI links every crop to its page there",
        env="VITCOW_PAGES_URL",
    )
    dagster_url: str | None = setting(
        "http://127.0.0.1:3000", "http(s) URL of the Dagster UI: crop pages link each crop's run and partitions there",
        env="VITCOW_DAGSTER_URL",
    )

    def __post_init__(self) -> None:
        check("settle_seconds", self.settle_seconds >= 0, f"settle_seconds must be >= 0, got {self.settle_seconds}")
        check("settle_timeout_seconds", self.settle_timeout_seconds >= 0, f"settle_timeout_seconds must be >= 0, got {self.settle_timeout_seconds}")
        for name in ("full_sweep_seconds", "remote_look_seconds", "remote_full_sweep_seconds", "remote_active_seconds"):
            check(name, getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_registrations_per_tick", "max_runs_per_tick", "max_pending_runs"):
            check(name, getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("public_url", "pages_url", "dagster_url"):
            value = getattr(self, name)
            check(name, value is None or value.startswith(("http://", "https://")), f"{name} must be an http(s) URL, got {value!r}")
