"""The crop pages as HTML: a crop's page (``lineage.story`` rendered as it is), the list of
crops with its filters, the error page (a missing crop gives a 404 that says why) and the
sign-in page (what every crop page answers, and all it answers, without a sign-in where
tokens are required).

Server-side HTML, every value escaped; the look comes from ``static/crops.css``. Two small
scripts: ``static/crops.js`` moves the context picture to the frame the video is paused
on; ``static/signin.js`` asks once more from the page itself when a link from another site
arrived without the (``SameSite=Strict``) session cookie. The header names who is signed
in, with a sign-out button. Rows carry ``data-field`` (the table column they show) and ``data-value`` (its
value as text), so a test or a script can check a page against the crops manifest.

May import the standard library and ``lineage`` (links); no web framework, no files.
"""

from html import escape
from urllib.parse import urlencode

from vitcow_assets.lineage.links import Links, list_path
from vitcow_assets.lineage.listing import FILTERS, CropList

TITLE = "vitcow · crops"


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _a(href: str | None, text, cls: str = "", new_tab: bool = False) -> str:
    if not href:
        return _e(text)
    attrs = (f' class="{cls}"' if cls else "") + (' target="_blank" rel="noopener"' if new_tab else "")
    return f'<a href="{_e(href)}"{attrs}>{_e(text)}</a>'


def _who(who: dict | None) -> str:
    if not who:
        return ""
    return (f'<span class="who" id="who">{_e(who["annotator"])} · {_e(who["role"])}</span>'
            '<form class="signout" method="post" action="/signout"><button id="sign-out">Sign out</button></form>')


def page(title: str, body: str, script: str | None = None, who: dict | None = None) -> str:
    """A whole page: the header (find a crop, the labelling page, who is signed in), ``body``
    and ``script`` (a file of ``static/``)."""
    js = f'<script src="/static/{_e(script)}"></script>' if script else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><link rel="stylesheet" href="/static/crops.css"></head>
<body><header class="top"><a class="brand" href="/crops">vitcow <span>crop pages</span></a>
<form class="find" action="/crops" method="get"><input name="id" placeholder="crop id, or the start of one" aria-label="crop id">
<button>Open</button></form><a class="labelling" href="/">labelling page</a>{_who(who)}</header>
<main>{body}</main>{js}</body></html>"""


def _row_html(row: dict) -> str:
    value = _a(row["href"], row["value"]) if row["value"] else '<span class="empty">—</span>'
    note = f' <span class="note">{_e(row["note"])}</span>' if row["note"] else ""
    field = f' data-field="{_e(row["field"])}"' if row["field"] else ""
    return f'<tr{field}><th>{_e(row["label"])}</th><td><span class="v" data-value="{_e(row["value"])}">{value}</span>{note}</td></tr>'


def _section(section: dict) -> str:
    rows = "".join(_row_html(r) for r in section["rows"])
    return f'<section class="card"><h2>{_e(section["title"])}</h2><table class="facts">{rows}</table></section>'


def _table(head: list[str], rows: list[list[str]], cls: str = "list", empty: str = "none") -> str:
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _media(story: dict) -> str:
    crop_id, video = story["crop_id"], story["video"]
    frame = video["context_frame"]
    return f"""<div class="media" data-fps="{_e(video['fps'])}" data-frames="{_e(video['frames'])}">
<figure class="card"><video id="crop-video" src="/crops/{_e(crop_id)}/video" autoplay loop muted playsinline controls preload="auto"></video>
<figcaption>the crop, {_e(video['frames'])} frames at {_e(video['fps'])} fps</figcaption></figure>
<figure class="card context"><img id="context" alt="the crop's frame on its clip, crop window drawn" data-src="/crops/{_e(crop_id)}/context.jpg"
src="/crops/{_e(crop_id)}/context.jpg?frame={frame}"><figcaption>its frame on the clip, crop window outlined:
crop frame <span id="context-frame">{frame}</span> (pause the video to show another)</figcaption></figure></div>"""


def _dagster(links: list[dict]) -> str:
    items = "".join(f'<li>{_e(d["label"])}: {_a(d["href"], d["text"], "dagster", new_tab=False)}</li>' for d in links)
    note = "" if any(d["href"] for d in links) else '<p class="note">No Dagster UI address set (VITCOW_DAGSTER_URL).</p>'
    return f'<section class="card" id="dagster"><h2>In the Dagster UI</h2><ul class="links">{items}</ul>{note}</section>'


def _track(story: dict) -> str:
    rows = [[_a(t["href"], t["crop_id"]) + (' <span class="here">this crop</span>' if t["current"] else ""), _e(t["clip_id"]),
             _e(t["source_frames"]), _e(t["presence"])] for t in story["track"]]
    return f'<section class="card" id="track"><h2>The same animal: every crop of its track</h2>{_table(["crop", "clip", "source frames", "presence"], rows)}</section>'


def _labels(story: dict) -> str:
    labels = story["labels"]
    current = [[_e(r["annotator"]), _e(r["label"]), _e(r["segment"]), _e(r["labelled_at"]), _e(r["source"])] for r in labels["current"]]
    history = [[_e(r["event_id"]), _e(r["kind"]), _e(r["annotator"]), _e(r["label"]) or (f"undoes {_e(r['undoes'])}" if r["undoes"] else ""),
                _e(r["segment"]), _e(r["labelled_at"]), _e(r["source"])] for r in labels["history"]]
    return (f'<section class="card" id="labels"><h2>Labels</h2>{_table(["annotator", "label", "segment", "when (UTC)", "from"], current, empty="no label yet")}'
            f'<h3>History</h3>{_table(["event", "kind", "annotator", "label", "segment", "when (UTC)", "from"], history, empty="no label events")}</section>')


def _datasets(story: dict) -> str:
    rows = [[_a(b["href"], b["fingerprint"]), _e(b["split"] or "pre-training only"), _e(b["class_name"]), _e(", ".join(b["lists"])),
             _e(b["out_dir"]), "in the folder now" if b["current"] else '<span class="note">replaced by a later build</span>'] for b in story["datasets"]]
    return (f'<section class="card" id="datasets"><h2>Dataset builds holding it</h2>'
            f'{_table(["build (dataset.json fingerprint)", "split", "class", "lists", "folder", ""], rows, empty="in no recorded dataset build")}</section>')


def crop_page(story: dict, who: dict | None = None) -> str:
    missing = "".join(f"<li>{_e(m)}</li>" for m in story["missing"])
    warn = f'<section class="card warn"><h2>Not found</h2><ul>{missing}</ul></section>' if missing else ""
    head = f'<h1>Crop <code>{_e(story["crop_id"])}</code></h1><p class="sub">{_e(story["title"])}</p>'
    body = head + _media(story) + _dagster(story["dagster"]) + warn + "".join(_section(s) for s in story["sections"])
    return page(f"crop {story['crop_id']} · {TITLE}", body + _track(story) + _labels(story) + _datasets(story), "crops.js", who)


def _filter_form(crop_list: CropList) -> str:
    query = crop_list.query
    inputs = "".join(
        f'<label>{_e(name)} <input name="{name}" value="{_e("" if getattr(query, name) is None else getattr(query, name))}"></label>' for name in FILTERS
    )
    return f'<form class="card filters" method="get" action="/crops">{inputs}<button>Filter</button> <a href="/crops">clear</a></form>'


def _pager(crop_list: CropList) -> str:
    q, total = crop_list.query, crop_list.total
    shown = f"{q.offset + 1}–{q.offset + len(crop_list.rows)} of {total}" if crop_list.rows else f"0 of {total}"
    def link(offset: int, text: str) -> str:
        return f'<a href="/crops?{_e(urlencode({**q.filters(), "offset": offset, "limit": q.limit}))}">{text}</a>'
    prev = link(max(0, q.offset - q.limit), "&larr; previous") if q.offset > 0 else ""
    nxt = link(q.offset + q.limit, "next &rarr;") if q.offset + q.limit < total else ""
    return f'<p class="pager"><span id="shown">{shown} crops</span> {prev} {nxt}</p>'


def _in_dagster(row: dict, links: Links) -> str:
    run = _a(links.run(row["run_id"]), f"run {row['run_id'][:8]}", "dagster")
    return f'{run} · {_a(links.asset_partition("object_crops", row["video_id"]), "crops", "dagster")}' if links.dagster_url else ""


def list_page(crop_list: CropList, heading: str, links: Links = Links(), who: dict | None = None) -> str:
    head = ["crop", "video", "clip", "track", "source frames", "presence", "farm", "camera", "labels", "lists", "in Dagster"]
    rows = [
        [_a(r["href"], r["crop_id"]), _a(list_path(video=r["video_id"]), r["video_id"]), _e(r["clip_id"]),
         _a(list_path(video=r["video_id"], track=r["track_id"]), r["track_id"]), _e(f"{r['source_frame_start']}–{r['source_frame_end']}"),
         _e(f"{r['presence_ratio']:.2f}"), _e(r["farm"]), _e(r["camera"]), _e(", ".join(r["labels"])), _e(", ".join(r["lists"])), _in_dagster(r, links)]
        for r in crop_list.rows
    ]
    body = f"<h1>{_e(heading)}</h1>{_filter_form(crop_list)}{_pager(crop_list)}{_table(head, rows, empty='no crop matches these filters')}"
    return page(f"{heading} · {TITLE}", body, who=who)


def error_page(status: int, heading: str, lines: list[str], who: dict | None = None) -> str:
    items = "".join(f"<p>{_e(line)}</p>" for line in lines)
    body = f'<section class="card error" data-status="{status}"><h1>{_e(heading)}</h1>{items}<p><a href="/crops">All crops</a></p></section>'
    return page(f"{heading} · {TITLE}", body, who=who)


def sign_in_page(next_path: str, message: str = "") -> str:
    """The sign-in form (token, and the page to go to after: ``next_path``); ``message``
    says why the last try failed. Nothing about any crop."""
    note = f'<p class="signin-error" id="signin-message" role="alert">{_e(message)}</p>' if message else ""
    body = f"""<section class="card signin" id="signin"><h1>Sign in</h1>
<p>This server shows its crop pages to signed-in users only. Give your token (<code>vitcow labels token NAME</code>
printed it once); this browser then stays signed in, for the crop pages and the labelling page, until you sign out.</p>
<form method="post" action="/signin"><input type="hidden" name="next" value="{_e(next_path)}">
<input id="token-input" name="token" type="password" placeholder="vct_..." autocomplete="off" required maxlength="128" aria-label="token">
<button id="sign-in">Sign in</button></form>{note}</section>"""
    return page(f"Sign in · {TITLE}", body, "signin.js")
