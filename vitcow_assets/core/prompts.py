"""Prompts as data: the per-video prompt file and how its steps apply to each clip.

A prompt file sits beside the footage (``<stem>.prompts.yaml``, also ``.yml``/``.json``)
and lists steps, in order (coordinates in pixels of the displayed frame, frames in source
frames, object ids as in the masks table)::

    prompts:
      - text: cow                      # a detection query: finds every cow
      - text: calf                     # a second query: one more pass per clip
      - box: [100, 50, 300, 200]       # a visual exemplar (xyxy) on one frame, with or
        frame: 120                     #   without text; acts in the clip holding that frame
        text: cow
      - points: [[412, 230], [430, 260]]   # clicks for one object on one frame:
        labels: [1, 0]                     #   1 positive, 0 negative
        frame: 120
        object: 7                          #   an id found by a query (refine) or a new id (add)
      - remove: 4                      # drop an object id in the clip holding ``frame``
        frame: 200

Each query (text, or box with optional text) is its own predictor pass per clip, except that
a segmenter that takes several texts in one session (transformers' SAM3) answers every text
query in one session (``clip_passes(..., texts_together=True)``); a query's object ids are
interleaved so that every query has its own: table id = id in the session * queries + query
index (the query that found the object, in a shared session). Point and removal steps go to
the session their object id belongs to.

Pure: parsing takes text, validation takes the video's size and frame count.
"""

import dataclasses
import hashlib
import json

import yaml

PROMPT_SUFFIXES = (".prompts.yaml", ".prompts.yml", ".prompts.json")
#: a prompt file larger than this is refused unread (real ones are a few hundred bytes)
MAX_PROMPT_FILE_BYTES = 1 << 20
_MAX_MESSAGE_CHARS = 300


class PromptFileError(ValueError):
    """A prompt file that cannot be used; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class TextQuery:
    text: str


@dataclasses.dataclass(frozen=True)
class BoxQuery:
    xyxy: tuple[float, float, float, float]
    frame: int
    text: str | None = None


@dataclasses.dataclass(frozen=True)
class PointStep:
    points: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]
    frame: int
    object_id: int


@dataclasses.dataclass(frozen=True)
class RemoveStep:
    object_id: int
    frame: int


Query = TextQuery | BoxQuery
Step = PointStep | RemoveStep


@dataclasses.dataclass(frozen=True)
class PromptPlan:
    """Queries (one predictor pass each) and the steps that refine them, in file order."""

    queries: tuple[Query, ...]
    steps: tuple[Step, ...] = ()
    source: str = "default"

    @property
    def passes(self) -> int:
        return len(self.queries)

    def label(self, pass_index: int) -> str:
        query = self.queries[pass_index]
        return (query.text or "visual") if isinstance(query, BoxQuery) else query.text

    def labels(self) -> list[str]:
        """The label of every pass, in pass order."""
        return [self.label(i) for i in range(self.passes)]

    def table_id(self, pass_index: int, pass_object_id: int) -> int:
        return pass_object_id * self.passes + pass_index

    def pass_of(self, table_id: int) -> tuple[int, int]:
        """``(pass index, id within the pass)`` of a table object id."""
        return table_id % self.passes, table_id // self.passes

    def fingerprint(self) -> str:
        """Stable hash of the plan: the data version of everything it produces."""
        return hashlib.sha256(repr((self.queries, self.steps)).encode()).hexdigest()[:16]



def plan_to_json(plan: PromptPlan) -> str:
    return json.dumps(
        {
            "source": plan.source,
            "queries": [{"kind": type(q).__name__, **dataclasses.asdict(q)} for q in plan.queries],
            "steps": [{"kind": type(s).__name__, **dataclasses.asdict(s)} for s in plan.steps],
        },
        indent=2,
    )


def plan_from_json(text: str) -> PromptPlan:
    data = json.loads(text)
    kinds = {c.__name__: c for c in (TextQuery, BoxQuery, PointStep, RemoveStep)}

    def build(item: dict):
        item = dict(item)
        cls = kinds[item.pop("kind")]
        for key in ("xyxy", "labels"):
            if key in item:
                item[key] = tuple(item[key])
        if "points" in item:
            item["points"] = tuple(tuple(p) for p in item["points"])
        return cls(**item)

    return PromptPlan(tuple(build(q) for q in data["queries"]), tuple(build(s) for s in data["steps"]), data["source"])


def text_plan(*texts: str) -> PromptPlan:
    return PromptPlan(tuple(TextQuery(t) for t in texts))


@dataclasses.dataclass(frozen=True)
class ClipPass:
    """What one predictor session does on one clip: its query and steps, in clip frames.

    ``texts``: for a session answering several text queries at once, ``(pass index, text)`` of
    each, in pass order (``pass_index`` and ``query`` are then the first of them); empty for a
    session of one query."""

    pass_index: int
    query: Query
    query_clip_frame: int
    steps: tuple[tuple[Step, int], ...]  # (step, clip frame)
    texts: tuple[tuple[int, str], ...] = ()

    @property
    def pass_indices(self) -> tuple[int, ...]:
        """The queries this session answers."""
        return tuple(p for p, _ in self.texts) or (self.pass_index,)


def clip_passes(plan: PromptPlan, source_frames: range, texts_together: bool = False) -> list[ClipPass]:
    """The sessions to run on a clip made of ``source_frames`` (a box query or a step whose
    frame is not in the clip does not act on it). With ``texts_together``, every text query
    of the plan is answered by one session (where the first text query's pass would be);
    box queries keep a session each."""
    index = {f: i for i, f in enumerate(source_frames)}
    texts = tuple((p, q.text) for p, q in enumerate(plan.queries) if isinstance(q, TextQuery))
    joint = texts_together and len(texts) > 1
    passes = []
    for p, query in enumerate(plan.queries):
        if isinstance(query, BoxQuery):
            if query.frame not in index:
                continue
            query_frame = index[query.frame]
        elif joint and p != texts[0][0]:
            continue  # answered by the shared text session
        else:
            query_frame = 0
        answers = {t for t, _ in texts} if joint and isinstance(query, TextQuery) else {p}
        steps = tuple(
            (step, index[step.frame])
            for step in plan.steps
            if step.frame in index and plan.pass_of(step.object_id)[0] in answers
        )
        passes.append(ClipPass(p, query, query_frame, steps, texts if len(answers) > 1 else ()))
    return passes


def _short(value, limit: int = 60) -> str:
    """``repr`` of a value from a prompt file, cut short: error messages stay one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= _MAX_MESSAGE_CHARS else message[: _MAX_MESSAGE_CHARS - 3] + "..."


class _PromptLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (``*name``): a few hundred bytes of nested aliases
    expand to billions of values (an "alias bomb"), and a prompt file never needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in prompt files", mark)
        return super().compose_node(parent, index)


def load_prompt_text(text: str, name: str):
    """The parsed YAML/JSON of a prompt file; a one-line ``PromptFileError`` if it is too
    large, uses aliases, nests too deeply or is not YAML/JSON."""
    if len(text) > MAX_PROMPT_FILE_BYTES:
        raise PromptFileError(f"{name}: larger than {MAX_PROMPT_FILE_BYTES} bytes; not a prompt file")
    try:
        return yaml.load(text, Loader=_PromptLoader)  # noqa: S506 - a safe loader without aliases
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PromptFileError(_clip(f"{name}:{where} not valid YAML/JSON ({getattr(exc, 'problem', None) or exc})")) from None
    except RecursionError:
        raise PromptFileError(f"{name}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise PromptFileError(_clip(f"{name}: not a usable value ({exc})")) from None


_ALLOWED = {
    "text": {"text"},
    "box": {"box", "frame", "text"},
    "points": {"points", "labels", "frame", "object"},
    "remove": {"remove", "frame"},
}


class _Steps:
    """Reads the steps of one prompt file, failing in one line naming the file and the step."""

    def __init__(self, name: str, width: int, height: int, frame_count: int) -> None:
        self.name, self.width, self.height, self.frame_count = name, width, height, frame_count

    def fail(self, i: int, message: str):
        raise PromptFileError(_clip(f"{self.name}: prompts[{i}]: {message}"))

    def frame(self, i: int, item: dict) -> int:
        frame = item.get("frame")
        if not isinstance(frame, int) or isinstance(frame, bool):
            self.fail(i, "'frame' (a source frame index) is required and must be an integer")
        if not 0 <= frame < self.frame_count:
            self.fail(i, f"frame {frame} is outside the video (0..{self.frame_count - 1})")
        return frame

    def point(self, i: int, field: str, xy) -> tuple[float, float]:
        if not (isinstance(xy, (list, tuple)) and len(xy) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xy)):
            self.fail(i, f"{field}: expected [x, y] in pixels, got {_short(xy)}")
        x, y = float(xy[0]), float(xy[1])
        if not (0 <= x <= self.width and 0 <= y <= self.height):
            self.fail(i, f"{field}: ({x:g}, {y:g}) is outside the {self.width}x{self.height} frame")
        return x, y

    def object_id(self, i: int, item: dict, key: str) -> int:
        value = item.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(i, f"'{key}' must be a non-negative integer object id")
        return value

    def kind(self, i: int, item) -> str:
        if not isinstance(item, dict):
            self.fail(i, f"expected a mapping, got {_short(item)}")
        kind = next((k for k in ("box", "points", "remove") if k in item), "text" if "text" in item else None)
        if kind is None:
            self.fail(i, f"unknown step with keys {_short(sorted(map(str, item)))}: expected text, box, points or remove")
        unknown = set(item) - _ALLOWED[kind]
        if unknown:
            self.fail(i, f"unknown key(s) {_short(sorted(map(str, unknown)))} for a {kind} step (allowed: {sorted(_ALLOWED[kind])})")
        if "text" in item and (not isinstance(item["text"], str) or not item["text"].strip()):
            self.fail(i, "'text' must be a non-empty string")
        return kind

    def box(self, i: int, item: dict) -> BoxQuery:
        box = item["box"]
        if not (isinstance(box, (list, tuple)) and len(box) == 4):
            self.fail(i, f"box: expected [x1, y1, x2, y2] in pixels, got {_short(box)}")
        x1, y1 = self.point(i, "box", box[:2])
        x2, y2 = self.point(i, "box", box[2:])
        if not (x2 > x1 and y2 > y1):
            self.fail(i, f"box: {_short(box)} has no area (need x2 > x1 and y2 > y1)")
        return BoxQuery((x1, y1, x2, y2), self.frame(i, item), item.get("text", "").strip() or None)

    def points(self, i: int, item: dict) -> PointStep:
        points, labels = item["points"], item.get("labels")
        if not isinstance(points, list) or not points:
            self.fail(i, "points: expected a non-empty list of [x, y] pixels")
        if not isinstance(labels, list) or len(labels) != len(points) or any(v not in (0, 1) or isinstance(v, bool) for v in labels):
            self.fail(i, "labels: expected one 1 (positive) or 0 (negative) per point")
        xy = tuple(self.point(i, f"points[{k}]", p) for k, p in enumerate(points))
        return PointStep(xy, tuple(labels), self.frame(i, item), self.object_id(i, item, "object"))


def parse_prompt_file(text: str, name: str, width: int, height: int, frame_count: int) -> PromptPlan:
    """Parse and validate a prompt file's text against the video's displayed size and length."""
    data = load_prompt_text(text, name)
    if not isinstance(data, dict) or set(data) != {"prompts"} or not isinstance(data["prompts"], list) or not data["prompts"]:
        raise PromptFileError(f"{name}: expected one key 'prompts' holding a non-empty list of steps")
    reader = _Steps(name, width, height, frame_count)
    queries: list[Query] = []
    steps: list[Step] = []
    for i, item in enumerate(data["prompts"]):
        kind = reader.kind(i, item)
        if kind == "text":
            queries.append(TextQuery(item["text"].strip()))
        elif kind == "box":
            queries.append(reader.box(i, item))
        elif kind == "points":
            steps.append(reader.points(i, item))
        else:
            steps.append(RemoveStep(reader.object_id(i, item, "remove"), reader.frame(i, item)))
    if not queries:
        raise PromptFileError(f"{name}: needs at least one text or box query before refinements")
    return PromptPlan(tuple(queries), tuple(steps), name)
