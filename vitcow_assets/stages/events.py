"""What a stage tells its caller while it works: progress, warnings, and what a damaged
file cost. The Dagster assets pass the step's log and the CLI's progress listener; tests
and benchmarks pass nothing."""

import dataclasses
from collections.abc import Callable

from vitcow_assets.media.video import DecodeDamage


@dataclasses.dataclass
class StageEvents:
    #: ``(done, total)`` clips, after each clip
    progress: Callable[[int, int], None] | None = None
    #: one-line warnings (e.g. a clip retried after running out of accelerator memory)
    warn: Callable[[str], None] | None = None
    #: frames lost to damaged packets, counted by the decode pass
    damage: DecodeDamage = dataclasses.field(default_factory=DecodeDamage)

    def report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)
