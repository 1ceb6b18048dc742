"""Where labels live, which taxonomy names them, and how long a browser stays signed in to
the labelling server (environment variables as listed)."""

import dataclasses

from vitcow_assets.core.settings import check, setting


@dataclasses.dataclass(frozen=True)
class LabelSettings:
    db_url: str | None = setting(
        None, "label database URL (default: the instance's Postgres when it is on Postgres, else <home>/labels/labels.db)", env="VITCOW_LABELS_DB"
    )
    taxonomy: str | None = setting(None, "taxonomy YAML file (default: the one shipped with the package)", env="VITCOW_TAXONOMY")
    session_hours: float = setting(
        12.0, "how long a sign-in to the labelling page and the crop pages lasts, in hours (then the browser signs in again)",
        env="VITCOW_LABELS_SESSION_HOURS",
    )

    def __post_init__(self) -> None:
        check("session_hours", self.session_hours > 0, f"session_hours must be > 0, got {self.session_hours}")
