"""Where labels live and which taxonomy names them (environment variables as listed)."""

import dataclasses

from vitcow_assets.core.settings import setting


@dataclasses.dataclass(frozen=True)
class LabelSettings:
    db_url: str | None = setting(
        None, "label database URL (default: the instance's Postgres when it is on Postgres, else <home>/labels/labels.db)", env="VITCOW_LABELS_DB"
    )
    taxonomy: str | None = setting(None, "taxonomy YAML file (default: the one shipped with the package)", env="VITCOW_TAXONOMY")
