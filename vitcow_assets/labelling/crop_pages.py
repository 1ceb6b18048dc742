"""The crop pages (read-only): Starlette routes mounted beside the labelling page.

Where the server requires tokens every one of them needs a sign-in (``access``: the
session cookie ``sign_in`` sets, or a Bearer token); without one each answers the sign-in
page (401) and nothing else. On 127.0.0.1 without ``--require-tokens`` they are open. An
annotator signed in sees only their own labels (on the page, in the list and its label
filters), no dataset classes and no trimmed copies (those come from others' labels), so
double labelling stays blind; a reviewer, or anyone on an open server, sees everyone's.

- ``GET /crops/{crop_id}``: the crop's page (``lineage.story`` over what is stored about
  it, rendered by ``crop_html``); a unique prefix of an id redirects to the whole id; an
  unknown id is a 404 page saying what was looked for and where.
- ``GET /crops/{crop_id}/video``: the crop video (HTTP range requests answered).
- ``GET /crops/{crop_id}/context.jpg?frame=K``: crop frame ``K`` (default: the middle frame
  with the animal) on its clip, the crop window drawn (``media.context``).
- ``GET /crops/{crop_id}/story.json``: the story as JSON.
- ``GET /crops?video=...&track=...``: the list of crops with filters (``lineage.listing``);
  ``?id=PREFIX`` and ``?path=CROP_OR_TRIMMED_VIDEO`` (a dataset list's path) redirect to the
  crop they name.

Links to the Dagster UI use the storage settings' ``dagster_url`` (``VITCOW_DAGSTER_URL``).
Every handler reads the stores when asked (the catalog is re-read when its file changes).

May import starlette, the labelling store, access, sign-in and catalog source, ``lineage``
and ``media``; no dagster.
"""

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from vitcow_assets.core.catalog import CROP_ID_CHARS
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.labelling import crop_html
from vitcow_assets.labelling.access import SESSION_ENDED, Access, ApiError, sees_everyone
from vitcow_assets.labelling.sign_in import sign_in_page
from vitcow_assets.labelling.store import LabelStore
from vitcow_assets.labelling.tokens import Identity
from vitcow_assets.lineage.builds import build_members, builds_of
from vitcow_assets.lineage.links import Links, crop_path, links_from
from vitcow_assets.lineage.listing import CropQuery, QueryError, list_crops
from vitcow_assets.lineage.records import MIN_PREFIX, context_source, crop_records, find_by_path, looks_like_crop_id
from vitcow_assets.lineage.story import context_frame, crop_story, value_text
from vitcow_assets.media.context import context_view, jpeg
from vitcow_assets.media.video import VideoError

if TYPE_CHECKING:
    from vitcow_assets.labelling.server import CatalogSource

_NO_STORE = {"cache-control": "no-store"}


class _NotFound(Exception):
    def __init__(self, heading: str, *lines: str) -> None:
        super().__init__(heading)
        self.heading, self.lines = heading, list(lines)


class CropPages:
    """The pages over the catalog, the label store and the storage root: each endpoint takes
    the request and gives HTML text or a response."""

    def __init__(self, catalog: "CatalogSource", store: LabelStore, home: Path, links: Links) -> None:
        self.catalog, self.store, self.root, self.links = catalog, store, StorageRoot(home), links

    def row(self, crop_id: str) -> dict:
        catalog = self.catalog.get()
        if crop_id not in catalog.rows:
            where = self.catalog.path or "the catalog given"
            shape = "" if looks_like_crop_id(crop_id) else f" ({crop_id!r} is not one: a crop id is {CROP_ID_CHARS} hex characters)"
            raise _NotFound(f"No crop {crop_id}", f"The crop catalog ({where}) holds {len(catalog.rows)} crops and none has the id {crop_id!r}{shape}.",
                            "A crop id is a hash of its video's bytes, frames, segmenter and object: a video processed again from new bytes gives its crops new ids.",
                            "Search by video and track in the list of crops, or give the start of an id in the box above.")
        return catalog.rows[crop_id]

    def starting_with(self, text: str) -> list[str]:
        """The catalog's crop ids starting with ``text`` (none unless it looks like an id or the start of one)."""
        text = text.strip().lower()
        return [c for c in self.catalog.get().order if c.startswith(text)] if looks_like_crop_id(text) else []

    def story(self, crop_id: str, viewer: Identity | None = None) -> dict:
        """The crop's story as ``viewer`` may see it (module docstring)."""
        row = self.row(crop_id)
        catalog = self.catalog.get()
        track = [catalog.rows[c] for c in catalog.tracks.get((row["video_id"], row["track_id"]), [])]
        mine = None if sees_everyone(viewer) else viewer.annotator
        current = [r for r in self.store.current_labels(mine).to_pylist() if r["crop_id"] == crop_id]
        history = self.store.history(crop_id, mine).to_pylist()
        builds = builds_of(self.root.dataset_builds, crop_id)
        records = crop_records(self.root, row)
        if mine is not None:  # others' labels show through a build's class and a segment's trimmed copy
            builds = [{**b, "class_name": None} for b in builds]
            records = dataclasses.replace(records, trimmed=[])
        return crop_story(records, track, current, history, builds, self.links)

    def _labels(self, viewer: Identity | None) -> dict[str, list[str]]:
        labels: dict[str, list[str]] = {}
        for r in self.store.current_labels(None if sees_everyone(viewer) else viewer.annotator).to_pylist():
            labels.setdefault(r["crop_id"], []).append(r["label"])
        return labels

    def _find(self, params) -> str | None:
        """The page of the crop a list request names by ``path`` or ``id`` (a start of one); None: none asked."""
        if params.get("path"):
            row = find_by_path(self.root, params["path"], search_above=False)
            if row is None:
                raise _NotFound("No crop has this video", f"{params['path']} is neither a crop video of the catalog nor a trimmed copy of one.")
            return crop_path(row["crop_id"])
        if params.get("id"):
            matches = self.starting_with(params["id"])
            if len(matches) != 1:
                raise _NotFound(f"No crop {params['id']}" if not matches else f"{len(matches)} crops start with {params['id']}",
                                "Give more of the id." if matches else f"No crop id in the catalog starts with it (give {MIN_PREFIX} to {CROP_ID_CHARS} hex characters).")
            return crop_path(matches[0])
        return None

    # -- endpoints --------------------------------------------------------------------------

    def crop_page(self, request: Request):
        crop_id = request.path_params["crop_id"]
        matches = [] if crop_id in self.catalog.get().rows else self.starting_with(crop_id)
        if len(matches) == 1:
            return RedirectResponse(crop_path(matches[0]), status_code=302)
        viewer = request.state.identity
        return crop_html.crop_page(self.story(crop_id, viewer), _who(viewer))

    def list_page(self, request: Request):
        params = request.query_params
        target = self._find(params)
        if target is not None:
            return RedirectResponse(target, status_code=303)
        query = CropQuery.of(params)
        members = None
        if query.dataset:
            members = build_members(self.root.dataset_builds, query.dataset, query.split)
            if members is None:
                raise QueryError(f"dataset: no recorded build has a fingerprint starting {query.dataset!r} (see {self.root.dataset_builds})")
        catalog = self.catalog.get()
        viewer = request.state.identity
        found = list_crops([catalog.rows[c] for c in catalog.order], query, self._labels(viewer), members)
        filters = ", ".join(f"{k} {value_text(v)}" for k, v in query.filters().items())
        return crop_html.list_page(found, f"Crops · {filters}" if filters else "Crops", self.links, _who(viewer))

    def video(self, request: Request):
        path = Path(self.row(request.path_params["crop_id"])["crop_path"])
        if not path.is_file():
            raise _NotFound("Crop video missing", f"{path} is not there (removed, or its partition is being re-run).")
        return FileResponse(path, media_type="video/mp4")

    def context(self, request: Request):
        crop_id, frame = request.path_params["crop_id"], request.query_params.get("frame", "")
        records = crop_records(self.root, self.row(crop_id))
        frames = records.catalog["frames"]
        k = min(int(frame), frames - 1) if frame.isdigit() else context_frame(records)
        source = context_source(records, k)
        if source is None or records.manifest is None:
            raise _NotFound(f"No context picture for crop {crop_id}", "Neither its clip file nor the stored source video is there, or its manifest row is missing.")
        window = (records.manifest.get("window_xyxy") or [None] * frames)[k]
        try:
            return Response(jpeg(context_view(source[0], source[1], window)), media_type="image/jpeg")
        except VideoError as exc:
            raise _NotFound(f"No context picture for crop {crop_id}", str(exc)) from None

    def story_json(self, request: Request):
        return JSONResponse(self.story(request.path_params["crop_id"], request.state.identity), headers=_NO_STORE)


def _who(viewer: Identity | None) -> dict | None:
    return None if viewer is None else viewer.as_dict()


def _html(handler, access: Access):
    """An endpoint that signs the caller in first (without a sign-in where one is needed:
    the sign-in page, 401, nothing else), then runs ``handler`` in the thread pool."""

    async def endpoint(request: Request) -> Response:
        try:
            request.state.identity = await run_in_threadpool(access.identify, request)
        except ApiError as exc:
            if exc.status == 401:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return sign_in_page(target, "Your sign-in has ended: sign in again." if str(exc) == SESSION_ENDED else "")
            return HTMLResponse(crop_html.error_page(exc.status, "Not allowed", [str(exc)]), status_code=exc.status, headers=_NO_STORE)
        who = _who(request.state.identity)
        try:
            result = await run_in_threadpool(handler, request)
        except _NotFound as exc:
            return HTMLResponse(crop_html.error_page(404, exc.heading, exc.lines, who), status_code=404, headers=_NO_STORE)
        except QueryError as exc:
            return HTMLResponse(crop_html.error_page(400, "Bad filter", [str(exc)], who), status_code=400, headers=_NO_STORE)
        return result if isinstance(result, Response) else HTMLResponse(result, headers=_NO_STORE)

    return endpoint


def crop_page_routes(catalog: "CatalogSource", store: LabelStore, home: str | os.PathLike, links: Links | None = None,
                     access: Access | None = None) -> list[Route]:
    """The routes of the crop pages (module docstring); ``links`` default to the environment's,
    ``access`` to an open server's."""
    pages = CropPages(catalog, store, Path(home), links or links_from(os.environ))
    access = access or Access(store, required=False)
    return [
        Route("/crops", _html(pages.list_page, access)),
        Route("/crops/{crop_id}", _html(pages.crop_page, access)),
        Route("/crops/{crop_id}/video", _html(pages.video, access)),
        Route("/crops/{crop_id}/context.jpg", _html(pages.context, access)),
        Route("/crops/{crop_id}/story.json", _html(pages.story_json, access)),
    ]
