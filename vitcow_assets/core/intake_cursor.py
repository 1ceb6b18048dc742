"""The landing sensor's cursor: a few hundred bytes, whatever the landing tree holds.

Dagster stores a sensor's cursor in every tick it records, so the cursor holds no file:
what is known of each file is in the intake state (``footage.intake_state``, one row per
file). The cursor holds:

- ``owner``: who this sensor is in that state (rows it took and requested runs for carry
  it, so that two sensors sharing the state never take each other's files);
- ``gen``: the generation of the last tick whose result Dagster stored. A tick's run
  requests reach Dagster only with its result; rows requested in a generation the cursor
  never confirmed were requested by a tick that was killed, and are requested again;
- per source: when it was last looked at, when its last full sweep finished, the id of
  the sweep under way (or last finished) and whether one is under way;
- what the UI was last told (files still arriving, waiting to be taken), to say it again
  only when it changes.

An older cursor (per source ``{"seen": ..., "done": ...}``, ``core.settle.SettleCursor``)
is recognised and handed over once (``legacy``) to be moved into the intake state.

Pure: JSON text in and out; the caller makes the owner's random id.
"""

import dataclasses
import json

VERSION = 2


#: the cursor keeps times to the millisecond
TIME_STEP_S = 0.001


def _ms(seconds: float) -> float:
    return round(seconds, 3)


@dataclasses.dataclass
class SourceMarks:
    """When a source was last looked at and swept (seconds since the epoch)."""

    looked_s: float = 0.0
    swept_s: float = 0.0
    sweep: int = 0
    sweeping: bool = False

    def look_due(self, now_s: float, every_s: float) -> bool:
        return now_s - self.looked_s >= every_s - TIME_STEP_S

    def sweep_due(self, now_s: float, every_s: float) -> bool:
        """A full sweep is under way, or the last one finished ``every_s`` ago or more."""
        return self.sweeping or now_s - self.swept_s >= every_s - TIME_STEP_S

    def as_list(self) -> list:
        return [_ms(self.looked_s), _ms(self.swept_s), self.sweep, int(self.sweeping)]

    @classmethod
    def from_list(cls, data) -> "SourceMarks":
        looked, swept, sweep, sweeping = (list(data) + [0, 0, 0, 0])[:4]
        return cls(float(looked), float(swept), int(sweep), bool(sweeping))


@dataclasses.dataclass
class IntakeCursor:
    owner: str = ""
    gen: int = 0
    sources: dict[str, SourceMarks] = dataclasses.field(default_factory=dict)
    #: (files still arriving, files waiting to be taken) as last reported
    reported: tuple[int, int] = (0, 0)
    #: an old-format cursor's per-source settle cursors, to be moved into the intake state
    legacy: dict | None = None

    def marks(self, source: str) -> SourceMarks:
        return self.sources.setdefault(source, SourceMarks())

    def dumps(self) -> str:
        data = {
            "v": VERSION,
            "owner": self.owner,
            "gen": self.gen,
            "sources": {name: marks.as_list() for name, marks in sorted(self.sources.items())},
            "reported": list(self.reported),
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None) -> "IntakeCursor":
        """The cursor in ``text``; an empty one for None, and the old format as ``legacy``."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ValueError("the landing sensor's cursor is not the JSON object it writes: clear it (the sensor's page, Cursor, Edit) to start afresh")
        if data.get("v") != VERSION:
            sources = data.get("sources") or {}
            legacy = {k: v for k, v in sources.items() if isinstance(v, dict) and ("seen" in v or "done" in v)}
            return cls(legacy=legacy or None, reported=(int(data.get("waiting", 0)), 0))
        sources = {name: SourceMarks.from_list(value) for name, value in (data.get("sources") or {}).items()}
        reported = tuple(int(x) for x in (data.get("reported") or [0, 0])[:2])
        return cls(str(data.get("owner", "")), int(data.get("gen", 0)), sources, reported)  # type: ignore[arg-type]
