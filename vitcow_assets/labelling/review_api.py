"""The reviewer's part of the labelling API: conflicts, and the decisions that settle them.

``GET /api/conflicts`` lists the catalog's crops whose annotators disagree (``verdicts``:
two classes, or a class and an exclusion; gold crops are never conflicts), each with every
annotator's current label and segment and the decision in force, if any (decided crops
only with ``?decided=1``). ``POST /api/adjudications`` records a reviewer's decision,
``POST /api/adjudications/undo`` takes back a crop's decision in force (the conflict is
back), ``GET /api/adjudications`` gives the history. Deciding needs a reviewer
(``access.Access.reviewer``; the store refuses a name without a reviewer token); so does
reading conflicts and decisions (they show every annotator's labels): an annotator's
sign-in gets 403 (``access.Access.reviewer_reads``).

The handlers run over the labelling API's store, catalog and taxonomy (``server.LabellingApi``).

May import starlette's request type and the labelling modules; no dagster.
"""

from starlette.requests import Request

from vitcow_assets.labelling.access import Access, ApiError
from vitcow_assets.labelling.events import iso_utc
from vitcow_assets.labelling.verdicts import conflicts

#: the category of an exclusion (e.g. Delete) in a conflict's classes
EXCLUDED = "(excluded)"


def class_or_note(taxonomy, label: str) -> str:
    """The training class of ``label``, ``(excluded)`` for an exclusion, or a note for a
    label the taxonomy no longer knows (its own category)."""
    try:
        found = taxonomy.class_of(label)
    except KeyError:
        return f"{label} (not in the taxonomy)"
    return EXCLUDED if found is None else found


def _event_json(row: dict) -> dict:
    out = dict(row)
    for key in ("labelled_at", "decided_at"):
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = iso_utc(out[key])
    return out


class ReviewApi:
    """Conflicts and decisions over a ``server.LabellingApi`` (its store, catalog, taxonomy)."""

    def __init__(self, api) -> None:
        self.api = api

    def _class_of(self, label: str) -> str:
        return class_or_note(self.api.taxonomy, label)

    def conflicts(self, request: Request, body) -> dict:
        Access.reviewer_reads(request.state.identity, "conflicts")
        store, catalog = self.api.store, self.api.catalog.get()
        with_decided = request.query_params.get("decided") in ("1", "true", "yes")
        decisions = {r["crop_id"]: r for r in store.current_decisions().to_pylist()}
        found = conflicts(store.current_labels().to_pylist(), catalog.order, self._class_of, decisions,
                          set(store.gold_labels()["crop_id"].to_pylist()))
        items = []
        for conflict in found:
            if conflict.decision is not None and not with_decided:
                continue
            crop = catalog.rows[conflict.crop_id]
            items.append({
                "crop_id": conflict.crop_id, "video_id": crop["video_id"], "clip_id": crop["clip_id"], "track_id": crop["track_id"],
                "farm": crop["farm"], "labels": [_event_json(r) for r in conflict.labels],
                "classes": {r["annotator"]: self._class_of(r["label"]) for r in conflict.labels},
                "decision": None if conflict.decision is None else _event_json(conflict.decision),
            })
        return {"conflicts": items, "open": sum(c.decision is None for c in found), "decided": sum(c.decision is not None for c in found)}

    def decide(self, request: Request, body: dict) -> tuple[int, dict]:
        reviewer = Access.reviewer(request.state.identity, body.get("reviewer"))
        row = self.api.crop_row_of(body)
        label = self.api.label_of(body)
        start, end = self.api.segment_of(body, row["frames"])
        source = "page" if body.get("source") == "page" else "api"
        decision = self.api.store.decide(row["crop_id"], reviewer, label, start, end, source=source)
        return 201, {"decision": decision.as_dict()}

    def undo(self, request: Request, body: dict) -> dict:
        reviewer = Access.reviewer(request.state.identity, body.get("reviewer"))
        row = self.api.crop_row_of(body)
        source = "page" if body.get("source") == "page" else "api"
        done = self.api.store.undo_decision(reviewer, row["crop_id"], source=source)
        if done is None:
            raise ApiError(409, f"crop {row['crop_id']} has no decision to undo")
        return {"undo": done[0].as_dict(), "undone": done[1].as_dict()}

    def history(self, request: Request, body) -> dict:
        Access.reviewer_reads(request.state.identity, "decisions")
        table = self.api.store.decision_history(request.query_params.get("crop_id"))
        return {"events": [_event_json(r) for r in table.to_pylist()]}
