// The labelling page: plays the annotator's next crop in a loop and sends labels to /api/.
// A reviewer's view (?review=1) plays the crops annotators disagree on and records decisions.
// Plain JavaScript, no dependencies. Frames are counted from 0 as the server counts them.
"use strict";

const $ = (id) => document.getElementById(id);
const SPEEDS = [0.25, 0.5, 0.75, 1, 1.5, 2];
const state = {
  annotator: null,
  identity: null,
  review: false,
  taxonomy: null,
  crop: null,
  frame: 0,
  trim: { start: null, end: null },
  preview: false,
  busy: false,
  recent: [],
  previewTimer: null,
  speed: SPEEDS.indexOf(1),
  unsure: false,
  videoUrl: null,
  context: { url: null, loading: false, wanted: null, shown: null },
  conflict: null,
  lastDecided: null,
};

class SignInNeeded extends Error {}

// Signed in, the browser holds a session cookie (HttpOnly: no script here sees it, nor the
// token it was made with); every request of this page carries it.
async function api(path, options = {}) {
  const init = { ...options, headers: { "content-type": "application/json" } };
  if (init.body !== undefined) init.body = JSON.stringify(init.body);
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (response.status === 401) throw new SignInNeeded(data.error || "sign in");
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

// Media are fetched and shown from an object URL, so that a sign-in that has ended shows
// the sign-in card instead of a broken video.
async function mediaUrl(path) {
  const response = await fetch(path);
  if (response.status === 401) throw new SignInNeeded("sign in");
  if (!response.ok) {
    const data = await response.json().catch(() => ({ error: response.statusText }));
    throw new Error(data.error || response.statusText);
  }
  return URL.createObjectURL(await response.blob());
}

function setStatus(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = "status " + kind;
}

// ---- video, frames, trimming ---------------------------------------------------------

function fps() {
  return state.crop && state.crop.fps > 0 ? state.crop.fps : 25;
}

function lastFrame() {
  return state.crop ? Math.max(0, state.crop.frames - 1) : 0;
}

function clampFrame(i) {
  return Math.min(lastFrame(), Math.max(0, i));
}

function frameAt(seconds) {
  return clampFrame(Math.floor(seconds * fps() + 1e-3));
}

function seekFrame(i) {
  const video = $("video");
  state.frame = clampFrame(i);
  video.currentTime = (state.frame + 0.5) / fps(); // the middle of the frame's display time
  renderFrame();
}

function onFrame(frame) {
  state.frame = frame;
  renderFrame();
  const { start, end } = segment();
  if (!state.preview || start === null) return;
  const video = $("video");
  if (frame < start || frame > end) {
    seekFrame(start);
  } else if (frame === end && !video.paused && state.previewTimer === null) {
    // show the last frame for its full time, then loop back to the first
    state.previewTimer = setTimeout(() => {
      state.previewTimer = null;
      if (state.preview) seekFrame(segment().start);
    }, 1000 / fps() / (video.playbackRate || 1));
  }
}

// While playing, the frame shown comes from the video; while paused (or seeking) the page's
// own frame is the truth: a late callback of an earlier frame must not move the trim point.
function watchFrames() {
  const video = $("video");
  const playing = () => !video.paused && !video.seeking;
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    const tick = (_now, meta) => {
      if (playing()) onFrame(clampFrame(Math.round(meta.mediaTime * fps())));
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  } else {
    const tick = () => {
      if (playing()) onFrame(frameAt(video.currentTime));
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }
  video.addEventListener("seeked", () => {
    if (!video.paused) onFrame(frameAt(video.currentTime));
  });
}

function segment() {
  let { start, end } = state.trim;
  if (start === null && end === null) return { start: null, end: null };
  if (start === null) start = 0;
  if (end === null) end = lastFrame();
  return start <= end ? { start, end } : { start: end, end: start };
}

function setTrim(which) {
  state.trim[which] = state.frame;
  renderTrim();
}

function clearTrim() {
  state.trim = { start: null, end: null };
  state.preview = false;
  renderTrim();
}

function togglePreview() {
  if (segment().start === null) {
    setStatus("Set a start or an end first ([ or ]).", "warn");
    return;
  }
  state.preview = !state.preview;
  if (state.preview) {
    seekFrame(segment().start);
    $("video").play();
  }
  renderTrim();
}

function togglePlay() {
  const video = $("video");
  if (video.paused) video.play();
  else video.pause();
}

function step(delta) {
  $("video").pause();
  seekFrame(state.frame + delta);
}

// ---- rendering -----------------------------------------------------------------------

function renderFrame() {
  if (!state.crop) return;
  $("frame").textContent = `frame ${state.frame} / ${lastFrame()}`;
  const width = 100 / state.crop.frames;
  const cursor = $("timeline-cursor");
  cursor.style.left = `${state.frame * width}%`;
  cursor.style.width = `${width}%`;
  requestContext(state.frame);
}

// ---- context view: the clip's frame with the crop's window, following the frame shown ----

// One request at a time; while one is under way only the latest frame wanted is kept.
function requestContext(frame) {
  const crop = state.crop;
  const ctx = state.context;
  if (!crop || !crop.context.available || ctx.shown === `${crop.crop_id}:${frame}`) return;
  ctx.wanted = { crop: crop.crop_id, frame };
  if (ctx.loading) return;
  ctx.loading = true;
  const { crop: cropId, frame: wanted } = ctx.wanted;
  ctx.wanted = null;
  mediaUrl(`${crop.context.url}?frame=${wanted}`)
    .then((url) => {
      const img = $("context");
      if (ctx.url) URL.revokeObjectURL(ctx.url);
      ctx.url = url;
      img.src = url;
      img.dataset.frame = String(wanted);
      img.dataset.cropId = cropId;
      ctx.shown = `${cropId}:${wanted}`;
      $("context-info").textContent = `· clip ${state.crop ? state.crop.clip_id : ""}, frame ${wanted}, crop window drawn`;
    })
    .catch((error) => { $("context-info").textContent = `· ${error.message}`; })
    .finally(() => {
      ctx.loading = false;
      const next = ctx.wanted;
      if (next && state.crop && next.crop === state.crop.crop_id) requestContext(next.frame);
    });
}

function resetContext(crop) {
  const img = $("context");
  state.context.shown = null;
  state.context.wanted = null;
  img.parentElement.hidden = !crop.context.available;
  if (!crop.context.available) {
    if (state.context.url) URL.revokeObjectURL(state.context.url);
    state.context.url = null;
    img.removeAttribute("src");
    delete img.dataset.frame;
    $("context-info").textContent = "· no clip file for this crop";
  }
}

// ---- playback speed and the unsure flag ---------------------------------------------

function applySpeed() {
  const video = $("video");
  video.defaultPlaybackRate = SPEEDS[state.speed];
  video.playbackRate = SPEEDS[state.speed];
  $("speed").textContent = `${SPEEDS[state.speed]}×`;
}

function changeSpeed(delta) {
  state.speed = Math.min(SPEEDS.length - 1, Math.max(0, state.speed + delta));
  applySpeed();
  setStatus(`Playing at ${SPEEDS[state.speed]}×.`);
}

function renderUnsure() {
  $("unsure").setAttribute("aria-pressed", String(state.unsure));
}

function toggleUnsure() {
  state.unsure = !state.unsure;
  renderUnsure();
  setStatus(state.unsure ? "The next label is marked unsure." : "Unsure cleared.", state.unsure ? "warn" : "");
}

function renderTrim() {
  const { start, end } = segment();
  const band = $("timeline-segment");
  const badge = $("segment-badge");
  if (start === null) {
    band.hidden = true;
    badge.hidden = true;
    $("trim-info").textContent = "whole crop";
  } else {
    const width = 100 / state.crop.frames;
    band.hidden = false;
    band.style.left = `${start * width}%`;
    band.style.width = `${(end - start + 1) * width}%`;
    badge.hidden = false;
    badge.textContent = `segment ${start}–${end}` + (state.preview ? " · looping" : "");
    $("trim-info").textContent = `frames ${start}–${end} (${end - start + 1} of ${state.crop.frames})`;
  }
  $("preview").classList.toggle("active", state.preview);
}

function formatTime(crop) {
  if (!crop.recorded_at) return "–";
  const at = new Date(crop.recorded_at.replace(" ", "T"));
  const sourceFps = crop.fps * crop.frame_step;
  if (sourceFps > 0) at.setSeconds(at.getSeconds() + crop.source_frame_start / sourceFps);
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

function renderMeta(crop) {
  const rows = [
    ["Farm", crop.farm || "–"],
    ["Camera", crop.camera || "–"],
    ["Time", formatTime(crop)],
    ["Track", `${crop.track_id}  (object ${crop.object_id})`],
    ["Video", crop.video_id],
    ["Clip", `${crop.clip_id} · source frames ${crop.source_frame_start}–${crop.source_frame_end}`],
    ["Frames", `${crop.frames} at ${crop.fps.toFixed(2)} fps · animal in ${crop.frames_present}`],
    ["Crop id", crop.crop_id],
  ];
  const meta = $("meta");
  meta.replaceChildren();
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    meta.append(dt, dd);
  }
}

function renderLabels() {
  const box = $("labels");
  box.replaceChildren();
  const chosenIn = state.review ? state.crop && state.crop.decision : state.crop && state.crop.mine;
  const mine = chosenIn ? chosenIn.label : null;
  for (const fine of state.taxonomy.labels) {
    const button = document.createElement("button");
    button.className = "label" + (fine.excluded ? " exclude" : "") + (fine.label === mine ? " chosen" : "");
    button.dataset.label = fine.label;
    button.title = fine.excluded ? "excludes the crop" : `training class ${fine.class}`;
    const key = document.createElement("kbd");
    key.textContent = fine.key;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = fine.label.replaceAll("_", " ");
    button.append(key, name);
    if (fine.segment) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "segment";
      button.append(tag);
    }
    button.addEventListener("click", () => (state.review ? decide(fine) : sendLabel(fine)));
    box.append(button);
  }
}

function renderTrack(crop) {
  const { track, count, index } = crop.neighbours;
  $("track-count").textContent = `· track ${crop.track_id}, clip ${index + 1} of ${count}`;
  const box = $("track");
  box.replaceChildren();
  for (const item of track) {
    const button = document.createElement("button");
    button.className = "clip" + (item.current ? " current" : "") + (item.label ? " labelled" : "");
    button.dataset.crop = item.crop_id;
    const clip = document.createElement("span");
    clip.className = "clip-id";
    clip.textContent = item.clip_id;
    const label = document.createElement("span");
    label.className = "clip-label";
    label.textContent = item.label ? item.label.replaceAll("_", " ") : "unlabelled";
    button.append(clip, label);
    if (!item.current) button.addEventListener("click", () => openCrop(item.crop_id));
    box.append(button);
  }
}

function renderProgress(progress) {
  $("progress").hidden = false;
  const share = progress.total ? (100 * progress.done) / progress.total : 0;
  $("progress-fill").style.width = `${share}%`;
  $("progress-text").textContent = `${progress.done} done · ${progress.remaining} to go` + (progress.assigned ? "" : " (all crops)");
}

function renderRecent() {
  const list = $("recent");
  list.replaceChildren();
  for (const item of state.recent.slice(0, 6)) {
    const li = document.createElement("li");
    li.textContent = item;
    list.append(li);
  }
}

function show(section) {
  for (const id of ["signin", "login", "finished", "review-done", "work"]) $(id).hidden = id !== section;
}

async function loadVideo(crop) {
  const video = $("video");
  if (video.dataset.cropId === crop.crop_id) return;
  const url = await mediaUrl(crop.video_url);
  if (state.videoUrl) URL.revokeObjectURL(state.videoUrl);
  state.videoUrl = url;
  video.dataset.cropId = crop.crop_id;
  video.setAttribute("src", url);
  video.load();
  applySpeed();
  video.play().catch(() => {});
}

async function showCrop(crop) {
  await loadVideo(crop);
  state.crop = crop;
  $("work").dataset.cropId = crop.crop_id;
  const chosen = state.review ? crop.decision : crop.mine;
  state.trim = chosen && chosen.start_frame !== null ? { start: chosen.start_frame, end: chosen.end_frame } : { start: null, end: null };
  state.unsure = Boolean(!state.review && crop.mine && crop.mine.unsure);
  state.preview = false;
  state.frame = 0;
  resetContext(crop);
  renderUnsure();
  show("work");
  renderMeta(crop);
  renderLabels();
  renderTrack(crop);
  renderTrim();
  renderFrame();
  $("review-card").hidden = !state.review;
  if (state.review) renderConflict();
}

function segmentText(event) {
  return event.start_frame !== null ? ` frames ${event.start_frame}–${event.end_frame}` : "";
}

function renderConflict() {
  const item = state.conflict;
  const list = $("review-labels");
  list.replaceChildren();
  if (!item) return;
  $("review-position").textContent = `· ${item.position} of ${item.open} open`;
  for (const event of item.labels) {
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who-label";
    who.textContent = `${event.annotator}: `;
    li.append(who, `${event.label.replaceAll("_", " ")} (${item.classes[event.annotator]})${segmentText(event)}`);
    if (event.unsure) {
      const tag = document.createElement("span");
      tag.className = "unsure-tag";
      tag.textContent = "unsure";
      li.append(tag);
    }
    list.append(li);
  }
  const decision = state.crop && state.crop.decision;
  $("review-decision").textContent = decision
    ? `Decided ${decision.label} by ${decision.reviewer}${segmentText(decision)}.`
    : "Press a label's key to decide (a segment set with [ ] goes with it).";
}

// ---- actions -------------------------------------------------------------------------

async function loadNext(after) {
  if (state.review) return loadConflict(after);
  const query = new URLSearchParams({ annotator: state.annotator });
  if (after) query.set("after", after);
  const data = await api(`/api/next?${query}`);
  renderProgress(data.progress);
  if (data.crop) await showCrop(data.crop);
  else {
    clearCrop();
    show("finished");
  }
}

function clearCrop() {
  state.crop = null;
  const video = $("video");
  video.removeAttribute("src");
  delete video.dataset.cropId;
}

async function openCrop(cropId) {
  const query = new URLSearchParams({ annotator: state.annotator });
  await showCrop(await api(`/api/crops/${encodeURIComponent(cropId)}?${query}`));
}

// The open conflicts, in catalog order; the first after `after` (wrapping round) is shown.
async function loadConflict(after, include) {
  const data = await api("/api/conflicts");
  const items = data.conflicts;
  $("review-count").textContent = `(${data.open})`;
  // `include`: show that crop; `after`: the one after it, or, when it left the list (it was
  // just decided), the one now at its place
  let index = items.findIndex((c) => c.crop_id === include);
  if (index < 0 && after) {
    const at = items.findIndex((c) => c.crop_id === after);
    const place = state.conflict ? state.conflict.position - 1 : 0;
    index = at >= 0 ? (at + 1) % items.length : Math.min(place, items.length - 1);
  }
  if (index < 0) index = 0;
  const item = items[index];
  if (!item) {
    state.conflict = null;
    clearCrop();
    show("review-done");
    return;
  }
  state.conflict = { ...item, position: index + 1, open: data.open };
  await openCrop(item.crop_id);
}

// One request at a time: keys pressed while one is under way are ignored (the crop they
// were meant for may already be gone). document.body.dataset.busy says which it is.
async function guarded(action) {
  if (state.busy) return;
  state.busy = true;
  document.body.dataset.busy = "1";
  try {
    await action();
  } catch (error) {
    if (error instanceof SignInNeeded) showSignIn(error.message);
    else setStatus(error.message, "error");
  } finally {
    state.busy = false;
    document.body.dataset.busy = "0";
  }
}

function sendLabel(fine) {
  return guarded(async () => {
    const crop = state.crop;
    if (!crop) return;
    const body = { annotator: state.annotator, crop_id: crop.crop_id, label: fine.label, source: "page", unsure: state.unsure };
    const { start, end } = segment();
    if (start !== null) Object.assign(body, { start_frame: start, end_frame: end });
    await api("/api/labels", { method: "POST", body });
    const where = (start !== null ? ` (frames ${start}–${end})` : "") + (state.unsure ? " (unsure)" : "");
    state.recent.unshift(`${fine.label}${where} · ${crop.clip_id} track ${crop.track_id}`);
    renderRecent();
    setStatus(`Labelled ${fine.label}${where}.`, "ok");
    await loadNext(crop.crop_id);
  });
}

function decide(fine) {
  return guarded(async () => {
    const crop = state.crop;
    if (!crop) return;
    const body = { crop_id: crop.crop_id, label: fine.label, source: "page" };
    if (!state.identity) body.reviewer = state.annotator;
    const { start, end } = segment();
    if (start !== null) Object.assign(body, { start_frame: start, end_frame: end });
    await api("/api/adjudications", { method: "POST", body });
    state.lastDecided = crop.crop_id;
    const where = start !== null ? ` (frames ${start}–${end})` : "";
    state.recent.unshift(`decided ${fine.label}${where} · ${crop.clip_id} track ${crop.track_id}`);
    renderRecent();
    await loadConflict(crop.crop_id);
    setStatus(`Decided ${fine.label}${where}.`, "ok");
  });
}

function undoDecision() {
  return guarded(async () => {
    if (!state.lastDecided) {
      setStatus("No decision of yours to undo in this tab.", "warn");
      return;
    }
    const body = { crop_id: state.lastDecided, source: "page" };
    if (!state.identity) body.reviewer = state.annotator;
    const data = await api("/api/adjudications/undo", { method: "POST", body });
    state.lastDecided = null;
    state.recent.unshift(`undo decision ${data.undone.label}`);
    renderRecent();
    await loadConflict(null, data.undone.crop_id);
    setStatus(`Undid the decision ${data.undone.label}: the conflict is open again.`, "ok");
  });
}

function undo() {
  return guarded(async () => {
    const data = await api("/api/undo", { method: "POST", body: { annotator: state.annotator, source: "page" } });
    state.recent.unshift(`undo ${data.undone.label}`);
    renderRecent();
    const progress = await api(`/api/progress?${new URLSearchParams({ annotator: state.annotator })}`);
    renderProgress(progress.progress);
    await openCrop(data.undone.crop_id); // last: once the crop shows, the page takes keys again
    setStatus(`Undid ${data.undone.label}: label this crop again.`, "ok");
  });
}

function skip() {
  return guarded(async () => {
    if (state.crop) await loadNext(state.crop.crop_id);
    setStatus(state.review ? "Skipped: the next conflict." : "Skipped: it comes back at the end of the queue.");
  });
}

function onKey(event) {
  if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) return;
  if (!state.taxonomy || !state.annotator) return;
  const takeBack = state.review ? undoDecision : undo;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (!state.crop) {
    if (key === "z") takeBack();
    return;
  }
  const controls = {
    " ": togglePlay, z: takeBack, n: skip, p: togglePreview, "?": toggleUnsure,
    "-": () => changeSpeed(-1), "=": () => changeSpeed(1), "+": () => changeSpeed(1),
    "[": () => setTrim("start"), "]": () => setTrim("end"),
    ArrowLeft: () => step(-1), ArrowRight: () => step(1),
  };
  if (controls[key]) {
    event.preventDefault();
    controls[key]();
    return;
  }
  const fine = state.taxonomy.labels.find((f) => f.key.toLowerCase() === key);
  if (fine) {
    event.preventDefault();
    if (state.review) decide(fine);
    else sendLabel(fine);
  } else if (key.length === 1 && key.trim()) {
    setStatus(`Key '${event.key}' is not in the legend: press a label's key or one of the controls.`, "warn");
  }
}

// The sign-in card; a message only when a sign-in this page knew of has ended.
function showSignIn(message) {
  clearCrop();
  show("signin");
  const ended = /ended/.test(message || "");
  $("signin-status").textContent = ended ? message.replace(/^sign in: /, "") : "";
  $("signin-status").className = ended ? "status error" : "status";
  $("token-input").focus();
}

// Trade the token for a session cookie (the token is not kept anywhere in the page).
async function signInWith(token) {
  const response = await fetch("/api/session", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }),
  });
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    $("signin-status").textContent = (data.error || response.statusText).replace(/^sign in: /, "");
    $("signin-status").className = "status error";
    $("token-input").focus();
    return;
  }
  await start();
}

async function showLogin() {
  show("login");
  const { annotators } = await api("/api/annotators");
  const list = $("known");
  list.replaceChildren();
  for (const name of annotators) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/?${new URLSearchParams({ annotator: name })}`;
    a.textContent = name;
    li.append(a);
    list.append(li);
  }
}

function wire() {
  $("play").addEventListener("click", togglePlay);
  $("step-back").addEventListener("click", () => step(-1));
  $("step-forward").addEventListener("click", () => step(1));
  $("trim-start").addEventListener("click", () => setTrim("start"));
  $("trim-end").addEventListener("click", () => setTrim("end"));
  $("preview").addEventListener("click", togglePreview);
  $("trim-clear").addEventListener("click", clearTrim);
  $("undo").addEventListener("click", () => (state.review ? undoDecision() : undo()));
  $("finished-undo").addEventListener("click", undo);
  $("skip").addEventListener("click", skip);
  $("slower").addEventListener("click", () => changeSpeed(-1));
  $("faster").addEventListener("click", () => changeSpeed(1));
  $("unsure").addEventListener("click", toggleUnsure);
  $("sign-out").addEventListener("click", () => {
    fetch("/api/session", { method: "DELETE" }).finally(() => window.location.reload());
  });
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    $("token-input").value = "";
    signInWith(token).catch((error) => setStatus(error.message, "error"));
  });
  $("timeline").addEventListener("click", (event) => {
    if (!state.crop) return;
    const box = $("timeline").getBoundingClientRect();
    $("video").pause();
    seekFrame(Math.floor(((event.clientX - box.left) / box.width) * state.crop.frames));
  });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("login-name").value.trim();
    if (name) window.location.search = new URLSearchParams({ annotator: name }).toString();
  });
  document.addEventListener("keydown", onKey);
  watchFrames();
}

// Who is at the keyboard: the token's annotator (or ?annotator=, which the server refuses
// to write for if it is someone else's name), else the name given (open server).
async function signIn() {
  let me;
  try {
    me = await api("/api/me");
  } catch (error) {
    if (error instanceof SignInNeeded) {
      showSignIn(error.message);
      return false;
    }
    throw error;
  }
  state.identity = me.annotator ? me : null;
  $("sign-out").hidden = !state.identity;
  const query = new URLSearchParams(window.location.search);
  state.review = query.has("review");
  state.annotator = query.get("annotator") || query.get("reviewer") || (state.identity ? state.identity.annotator : null);
  $("review-link").hidden = !(state.identity && state.identity.role === "reviewer") || state.review;
  return true;
}

async function start() {
  if (!(await signIn())) return;
  state.taxonomy = await api("/api/taxonomy");
  if (!state.annotator) return showLogin();
  const role = state.identity ? ` · ${state.identity.role}` : "";
  $("who").textContent = (state.review ? `reviewing as ${state.annotator}` : state.annotator) + role;
  document.title = `${state.annotator} · vitcow ${state.review ? "review" : "labelling"}`;
  $("label-title").firstChild.textContent = state.review ? "Decide " : "Label ";
  await guarded(() => loadNext(null));
}

wire();
start().catch((error) => setStatus(error.message, "error"));
