"""The labelling page and its JSON API (Starlette), served by uvicorn.

``create_app(store, catalog, taxonomy, home, require_tokens)`` builds the app: the page
(``static/``, served from the package: no CDN) at ``/``, and the API under ``/api/`` that
the page uses (documented in ``docs/labelling.md``). Every API call goes through
``_endpoint``, which signs the caller in first (``access``: with ``require_tokens`` a valid
token or 401). The client names crops by ``crop_id`` only; a crop video is served only for
a crop in the catalog, from the path the catalog gives, with HTTP range requests
(Starlette's ``FileResponse`` answers ``Range`` with 206 and ``Content-Range``), so the
browser can seek; its context view (``context_frames``) from the clip file the catalog
names. The catalog is given as a table, or as the path of ``catalog/crops.parquet``, which
is read again whenever the file changes. The reviewer's endpoints are ``review_api``'s. The crop
pages (``crop_pages``: ``/crops``, ``/crops/{crop_id}``, read-only) are served beside them,
behind the same sign-in; a browser signs in once (``sign_in``: a session cookie) for both.
What a caller reads of other annotators' labels follows ``access``: an annotator's sign-in
sees only its own labels (no decisions, nothing that says a crop is gold), a reviewer's sees all.

``serve(...)`` runs the app, bound to 127.0.0.1 unless told otherwise; served beyond it,
tokens are required. ``startup_lines`` are what it prints first.

May import starlette, uvicorn, pyarrow and the labelling modules; no dagster.
"""

import argparse
import dataclasses
import datetime as dt
import math
import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vitcow_assets.core.catalog import CATALOG_SCHEMA
from vitcow_assets.core.taxonomy import RESERVED_KEYS, Taxonomy
from vitcow_assets.labelling.access import Access, ApiError, check_annotator, sees_everyone, tokens_needed
from vitcow_assets.labelling.context_frames import ContextError, ContextFrames, CropWindows
from vitcow_assets.labelling.crop_pages import crop_page_routes
from vitcow_assets.labelling.events import LabelError, LabelEvent, NotAllowedError, check_segment, iso_utc
from vitcow_assets.labelling.queues import Queue, queue_of
from vitcow_assets.labelling.review_api import ReviewApi
from vitcow_assets.labelling.settings import LabelSettings
from vitcow_assets.labelling.sign_in import SignIn
from vitcow_assets.labelling.store import LabelStore
from vitcow_assets.labelling.tokens import Identity

STATIC = Path(__file__).with_name("static")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
DEFAULT_SESSION_HOURS = LabelSettings.session_hours
#: neighbouring clips of the same track listed on each side of the crop shown
NEIGHBOURS = 4
_CROP_FIELDS = [
    "crop_id", "video_id", "farm", "camera", "recorded_at", "clip_id", "object_id", "track_id", "source_frame_start",
    "source_frame_end", "frame_step", "frames", "frames_present", "presence_ratio", "fps", "duration_s", "segmenter", "prompt",
]


@dataclasses.dataclass(frozen=True)
class _Catalog:
    rows: dict[str, dict]
    order: list[str]
    #: (video_id, track_id) -> crop ids by first source frame
    tracks: dict[tuple[str, int], list[str]]

    @classmethod
    def of(cls, table: pa.Table) -> "_Catalog":
        for name in CATALOG_SCHEMA.names:  # a catalog written before a column was added: nulls
            if name not in table.column_names and CATALOG_SCHEMA.field(name).nullable:
                table = table.append_column(CATALOG_SCHEMA.field(name), pa.nulls(table.num_rows, CATALOG_SCHEMA.field(name).type))
        table = table.select(CATALOG_SCHEMA.names)
        rows = {r["crop_id"]: r for r in table.to_pylist()}
        order = table["crop_id"].to_pylist()
        tracks: dict[tuple[str, int], list[str]] = {}
        for crop in sorted(rows.values(), key=lambda r: (r["source_frame_start"], r["object_id"])):
            tracks.setdefault((crop["video_id"], crop["track_id"]), []).append(crop["crop_id"])
        return cls(rows, order, tracks)


class CatalogSource:
    """The catalog as a table, or read from a Parquet file again whenever the file changes
    (a missing file is an empty catalog)."""

    def __init__(self, catalog: pa.Table | str | os.PathLike) -> None:
        self.path = None if isinstance(catalog, pa.Table) else Path(catalog)
        self._stamp = None
        self._lock = threading.Lock()
        self._catalog = _Catalog.of(catalog) if isinstance(catalog, pa.Table) else _Catalog.of(CATALOG_SCHEMA.empty_table())

    def get(self) -> _Catalog:
        if self.path is None:
            return self._catalog
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                table = pq.read_table(self.path) if stamp else CATALOG_SCHEMA.empty_table()
                self._catalog, self._stamp = _Catalog.of(table), stamp
            return self._catalog


def _json_value(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _event_json(event: LabelEvent | dict) -> dict:
    data = event.as_dict() if isinstance(event, LabelEvent) else dict(event)
    if isinstance(data.get("labelled_at"), dt.datetime):
        data["labelled_at"] = iso_utc(data["labelled_at"])
    return data


def _decision_json(row: dict) -> dict:
    return {**row, "decided_at": iso_utc(row["decided_at"])}


def _annotator(value) -> str:
    return check_annotator(value)


class LabellingApi:
    """The API's handlers over one store, catalog and taxonomy."""

    def __init__(self, store: LabelStore, catalog: CatalogSource, taxonomy: Taxonomy, home: Path, access: Access) -> None:
        self.store, self.catalog, self.taxonomy, self.home, self.access = store, catalog, taxonomy, home, access
        self.context_frames, self.windows = ContextFrames(), CropWindows(home)

    def _crop_row(self, catalog: _Catalog, crop_id) -> dict:
        if not isinstance(crop_id, str) or crop_id not in catalog.rows:
            raise ApiError(404, f"unknown crop {crop_id!r} (not in the catalog)")
        return catalog.rows[crop_id]

    # -- what a write names, checked: each a one-line 400 (or 404) saying what is wrong ---

    def crop_row_of(self, body: dict) -> dict:
        if body.get("crop_id") is None:
            raise ApiError(400, "crop_id: missing (give the crop_id of a catalog crop)")
        return self._crop_row(self.catalog.get(), body["crop_id"])

    def label_of(self, body: dict) -> str:
        label = body.get("label")
        if label is None:
            raise ApiError(400, f"label: missing (give a label of taxonomy {self.taxonomy.name!r}, e.g. {self.taxonomy.labels[0].label!r})")
        if not isinstance(label, str) or self.taxonomy.get(label) is None:
            raise ApiError(400, f"unknown label {label!r} (not in taxonomy {self.taxonomy.name!r})")
        return label

    @staticmethod
    def segment_of(body: dict, frames: int) -> tuple[int | None, int | None]:
        start, end = body.get("start_frame"), body.get("end_frame")
        try:
            check_segment(start, end, frames)
        except LabelError as exc:
            raise ApiError(400, str(exc)) from None
        return start, end

    @staticmethod
    def unsure_of(body: dict) -> bool:
        unsure = body.get("unsure", False)
        if not isinstance(unsure, bool):
            raise ApiError(400, f"unsure: give true or false, not {unsure!r}")
        return unsure

    def _labels_by_crop(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for row in self.store.current_labels().to_pylist():
            out.setdefault(row["crop_id"], []).append(_event_json(row))
        return out

    def _queue(self, annotator: str, catalog: _Catalog, labels: dict[str, list[dict]]) -> Queue:
        assigned = self.store.assignments(annotator)["crop_id"].to_pylist()
        labelled = {crop: {r["annotator"] for r in rows} for crop, rows in labels.items()}
        return queue_of(annotator, assigned, catalog.order, labelled)

    def _neighbours(self, catalog: _Catalog, row: dict, annotator: str | None, labels: dict[str, list[dict]]) -> dict:
        track = catalog.tracks[(row["video_id"], row["track_id"])]
        i = track.index(row["crop_id"])
        window = []
        for crop_id in track[max(0, i - NEIGHBOURS) : i + NEIGHBOURS + 1]:
            other = catalog.rows[crop_id]
            mine = next((r["label"] for r in labels.get(crop_id, []) if r["annotator"] == annotator), None)
            window.append({"crop_id": crop_id, "clip_id": other["clip_id"], "source_frame_start": other["source_frame_start"],
                           "current": crop_id == row["crop_id"], "label": mine})
        return {"track": window, "index": i, "count": len(track),
                "previous": track[i - 1] if i > 0 else None, "next": track[i + 1] if i + 1 < len(track) else None}

    def _crop_json(self, catalog: _Catalog, crop_id: str, annotator: str | None, labels: dict[str, list[dict]], viewer: Identity | None) -> dict:
        """A crop as ``viewer`` may see it: everyone's labels and the decision for a reviewer
        (or without a sign-in); an annotator's own label only, and no decision."""
        row = self._crop_row(catalog, crop_id)
        everyone = sees_everyone(viewer)
        annotator = annotator if everyone else viewer.annotator
        data = {k: _json_value(row[k]) for k in _CROP_FIELDS}
        data["video_url"] = f"/api/crops/{crop_id}/video"
        data["context"] = {"url": f"/api/crops/{crop_id}/context", "available": bool(row["clip_path"])}
        data["labels"] = [r for r in labels.get(crop_id, []) if everyone or r["annotator"] == annotator]
        data["mine"] = next((r for r in data["labels"] if r["annotator"] == annotator), None)
        data["neighbours"] = self._neighbours(catalog, row, annotator, labels)
        decided = self.store.current_decisions(crop_id).to_pylist() if everyone else []
        data["decision"] = _decision_json(decided[0]) if decided else None
        return data

    # -- endpoints: (request, body) -> JSON-able dict, (status, dict) or a Response -------

    def taxonomy_json(self, request: Request, body) -> dict:
        t = self.taxonomy
        labels = [{"label": f.label, "key": f.key, "class": f.target, "excluded": f.excluded, "segment": f.segment} for f in t.labels]
        return {"name": t.name, "version": t.version, "fingerprint": t.fingerprint, "classes": list(t.classes),
                "labels": labels, "reserved_keys": sorted(RESERVED_KEYS)}

    def next_crop(self, request: Request, body) -> dict:
        annotator = _annotator(request.query_params.get("annotator"))
        catalog, labels = self.catalog.get(), self._labels_by_crop()
        queue = self._queue(annotator, catalog, labels)
        crop_id = queue.next_crop(request.query_params.get("after"))
        crop = None if crop_id is None else self._crop_json(catalog, crop_id, annotator, labels, request.state.identity)
        return {"annotator": annotator, "crop": crop, "progress": queue.progress()}

    def progress(self, request: Request, body) -> dict:
        annotator = _annotator(request.query_params.get("annotator"))
        return {"annotator": annotator, "progress": self._queue(annotator, self.catalog.get(), self._labels_by_crop()).progress()}

    def crop(self, request: Request, body) -> dict:
        annotator = request.query_params.get("annotator")
        return self._crop_json(self.catalog.get(), request.path_params["crop_id"], annotator, self._labels_by_crop(), request.state.identity)

    def video(self, request: Request, body) -> Response:
        row = self._crop_row(self.catalog.get(), request.path_params["crop_id"])
        path = Path(row["crop_path"])
        if not path.is_file():
            raise ApiError(404, f"crop {row['crop_id']}: its video {path.name} is missing")
        return FileResponse(path, media_type="video/mp4")

    def context(self, request: Request, body) -> Response:
        """The crop's frame ``?frame=`` on its clip, the crop's window drawn (JPEG)."""
        row = self._crop_row(self.catalog.get(), request.path_params["crop_id"])
        text = request.query_params.get("frame", "0")
        if not text.isdigit() or int(text) >= row["frames"]:
            raise ApiError(400, f"frame: give a crop frame 0..{row['frames'] - 1}, not {text!r}")
        frame = int(text)
        windows = self.windows.of(row["video_id"], row["crop_path"]) or []
        try:
            image = self.context_frames.jpeg(row["clip_path"], frame, windows[frame] if frame < len(windows) else None)
        except ContextError as exc:
            raise ApiError(404, f"crop {row['crop_id']}: {exc}") from None
        return Response(image, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    def me(self, request: Request, body) -> dict:
        identity = request.state.identity
        who = identity.as_dict() if identity is not None else {"annotator": None, "role": None}
        return {**who, "tokens_required": self.access.required}

    def add_label(self, request: Request, body: dict) -> tuple[int, dict]:
        annotator = self.access.writer(request.state.identity, body.get("annotator"))
        row = self.crop_row_of(body)
        label = self.label_of(body)
        start, end = self.segment_of(body, row["frames"])
        unsure = self.unsure_of(body)
        source = "page" if body.get("source") == "page" else "api"
        event = self.store.add_label(row["crop_id"], annotator, label, start, end, source=source, unsure=unsure)
        return 201, {"event": _event_json(event)}

    def undo(self, request: Request, body: dict) -> dict:
        annotator = self.access.writer(request.state.identity, body.get("annotator"), "undos")
        crop_id = body.get("crop_id")
        done = self.store.undo_last(annotator, crop_id if isinstance(crop_id, str) else None, source="page" if body.get("source") == "page" else "api")
        if done is None:
            raise ApiError(409, f"{annotator} has no label to undo")
        return {"undo": _event_json(done[0]), "undone": _event_json(done[1])}

    def labels(self, request: Request, body) -> dict:
        q = request.query_params
        table = self.store.current_labels(self.access.reads_of(request.state.identity, q.get("annotator")))
        rows = [_event_json(r) for r in table.to_pylist() if q.get("crop_id") in (None, r["crop_id"])]
        return {"labels": rows}

    def history(self, request: Request, body) -> dict:
        q = request.query_params
        who = self.access.reads_of(request.state.identity, q.get("annotator"))
        return {"events": [_event_json(r) for r in self.store.history(q.get("crop_id"), who).to_pylist()]}

    def annotators(self, request: Request, body) -> dict:
        return {"annotators": self.store.annotators()}


_NO_STORE = {"cache-control": "no-store"}


def _endpoint(handler, access: Access):
    """An async Starlette endpoint that signs the caller in (``access``: 401 without a valid
    token where one is needed) and runs ``handler(request, body)`` in the thread pool (the
    store blocks); errors become ``{"error": "..."}`` with their status."""

    async def endpoint(request: Request) -> Response:
        try:
            request.state.identity = await run_in_threadpool(access.identify, request)
            body = None
            if request.method == "POST":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError(400, "the request body must be JSON") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "the request body must be a JSON object")
            result = await run_in_threadpool(handler, request, body)
        except ApiError as exc:
            headers = {**_NO_STORE, "www-authenticate": "Bearer"} if exc.status == 401 else _NO_STORE
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
        except NotAllowedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=403, headers=_NO_STORE)
        except LabelError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400, headers=_NO_STORE)
        if isinstance(result, Response):
            return result
        status, data = result if isinstance(result, tuple) else (200, result)
        return JSONResponse(data, status_code=status, headers=_NO_STORE)

    return endpoint


def create_app(store: LabelStore, catalog: pa.Table | str | os.PathLike, taxonomy: Taxonomy, home: str | os.PathLike,
               require_tokens: bool = False, session_hours: float = DEFAULT_SESSION_HOURS) -> Starlette:
    """The labelling page, its API and the crop pages over ``store``, the crop ``catalog`` (a
    table, or the path of its Parquet file, re-read when it changes) and ``taxonomy``; with
    ``require_tokens`` every call needs a sign-in (a token, or a browser session lasting
    ``session_hours``)."""
    access = Access(store, require_tokens)
    api = LabellingApi(store, CatalogSource(catalog), taxonomy, Path(home), access)
    review = ReviewApi(api)
    sign_in = SignIn(store, dt.timedelta(hours=session_hours))
    routes = [
        Route("/", lambda request: FileResponse(STATIC / "index.html", headers=_NO_STORE)),
        *sign_in.routes(),
        Route("/api/me", _endpoint(api.me, access)),
        Route("/api/taxonomy", _endpoint(api.taxonomy_json, access)),
        Route("/api/annotators", _endpoint(api.annotators, access)),
        Route("/api/next", _endpoint(api.next_crop, access)),
        Route("/api/progress", _endpoint(api.progress, access)),
        Route("/api/crops/{crop_id}", _endpoint(api.crop, access)),
        Route("/api/crops/{crop_id}/video", _endpoint(api.video, access)),
        Route("/api/crops/{crop_id}/context", _endpoint(api.context, access)),
        Route("/api/labels", _endpoint(api.labels, access), methods=["GET"]),
        Route("/api/labels", _endpoint(api.add_label, access), methods=["POST"]),
        Route("/api/undo", _endpoint(api.undo, access), methods=["POST"]),
        Route("/api/history", _endpoint(api.history, access)),
        Route("/api/conflicts", _endpoint(review.conflicts, access)),
        Route("/api/adjudications", _endpoint(review.history, access), methods=["GET"]),
        Route("/api/adjudications", _endpoint(review.decide, access), methods=["POST"]),
        Route("/api/adjudications/undo", _endpoint(review.undo, access), methods=["POST"]),
        *crop_page_routes(api.catalog, store, home, access=access),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def startup_lines(host: str, port: int, tokens: bool, annotator: str | None = None) -> list[str]:
    """What the server says first: the labelling page's address, the crop pages' address,
    and whether a sign-in is needed (each on its own line)."""
    base = f"http://{host}:{port}"
    who = f"?annotator={annotator}" if annotator else ""
    sign_in = ("tokens required: each user signs in once with a token (vitcow labels token NAME makes one)" if tokens
               else "no tokens required: open to this machine (127.0.0.1) only")
    return [f"labelling page: {base}/{who}", f"crop pages:     {base}/crops", f"sign-in:        {sign_in}"]


def serve(store: LabelStore, catalog: pa.Table | str | os.PathLike, taxonomy: Taxonomy, home: str | os.PathLike,
          host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "warning", require_tokens: bool = False,
          session_hours: float = DEFAULT_SESSION_HOURS) -> None:
    """Serve the page on ``host:port`` (127.0.0.1 by default: this machine only) until
    stopped; beyond 127.0.0.1, or with ``require_tokens``, every call needs a sign-in."""
    import uvicorn

    app = create_app(store, catalog, taxonomy, home, tokens_needed(host, require_tokens), session_hours)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def main(argv: list[str] | None = None) -> int:
    """``python -m vitcow_assets.labelling.server``: the page over a home folder (what
    ``vitcow label`` wires; the tests start servers this way)."""
    from vitcow_assets.core.settings import SettingError, build, from_environ
    from vitcow_assets.core.taxonomy import TaxonomyError
    from vitcow_assets.labelling.taxonomy_file import load_taxonomy

    parser = argparse.ArgumentParser(prog="python -m vitcow_assets.labelling.server", description=main.__doc__)
    parser.add_argument("--home", default=os.environ.get("VITCOW_HOME", "vitcow_home"), help="storage root ($VITCOW_HOME)")
    parser.add_argument("--db", default=None, help="labels database URL (default $VITCOW_LABELS_DB, else HOME/labels/labels.db)")
    parser.add_argument("--catalog", default=None, help="crop catalog Parquet (default HOME/catalog/crops.parquet)")
    parser.add_argument("--taxonomy", default=None, help="taxonomy YAML (default $VITCOW_TAXONOMY, else the shipped one)")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--require-tokens", action="store_true", help="every call needs a sign-in (always so beyond 127.0.0.1)")
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level (info: one line per request)")
    args = parser.parse_args(argv)
    home = Path(args.home).absolute()
    try:
        settings = build(LabelSettings, from_environ(LabelSettings, os.environ))
        taxonomy = load_taxonomy(args.taxonomy)
        store = LabelStore.open(args.db, home)
    except (TaxonomyError, LabelError, SettingError) as exc:
        print(f"error: {exc}", flush=True)
        return 2
    catalog = Path(args.catalog) if args.catalog else home / "catalog" / "crops.parquet"
    tokens = tokens_needed(args.host, args.require_tokens)
    print("\n".join([*startup_lines(args.host, args.port, tokens), f"labels in:      {store.safe_url}"]), flush=True)
    serve(store, catalog, taxonomy, home, args.host, args.port, args.log_level, tokens, settings.session_hours)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
