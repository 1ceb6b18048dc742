// The labelling page: plays the annotator's next crop in a loop and sends labels to /api/.
// Plain JavaScript, no dependencies. Frames are counted from 0 as the server counts them.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  annotator: null,
  taxonomy: null,
  crop: null,
  frame: 0,
  trim: { start: null, end: null },
  preview: false,
  busy: false,
  recent: [],
  previewTimer: null,
};

async function api(path, options = {}) {
  const init = { ...options, headers: { "content-type": "application/json" } };
  if (init.body !== undefined) init.body = JSON.stringify(init.body);
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
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
  const mine = state.crop && state.crop.mine ? state.crop.mine.label : null;
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
    button.addEventListener("click", () => sendLabel(fine));
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
  for (const id of ["login", "finished", "work"]) $(id).hidden = id !== section;
}

function showCrop(crop) {
  state.crop = crop;
  $("work").dataset.cropId = crop.crop_id;
  const video = $("video");
  if (video.getAttribute("src") !== crop.video_url) {
    video.setAttribute("src", crop.video_url);
    video.load();
    video.play().catch(() => {});
  }
  const mine = crop.mine;
  state.trim = mine && mine.start_frame !== null ? { start: mine.start_frame, end: mine.end_frame } : { start: null, end: null };
  state.preview = false;
  state.frame = 0;
  show("work");
  renderMeta(crop);
  renderLabels();
  renderTrack(crop);
  renderTrim();
  renderFrame();
}

// ---- actions -------------------------------------------------------------------------

async function loadNext(after) {
  const query = new URLSearchParams({ annotator: state.annotator });
  if (after) query.set("after", after);
  const data = await api(`/api/next?${query}`);
  renderProgress(data.progress);
  if (data.crop) showCrop(data.crop);
  else {
    state.crop = null;
    $("video").removeAttribute("src");
    show("finished");
  }
}

async function openCrop(cropId) {
  const query = new URLSearchParams({ annotator: state.annotator });
  showCrop(await api(`/api/crops/${encodeURIComponent(cropId)}?${query}`));
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
    setStatus(error.message, "error");
  } finally {
    state.busy = false;
    document.body.dataset.busy = "0";
  }
}

function sendLabel(fine) {
  return guarded(async () => {
    const crop = state.crop;
    if (!crop) return;
    const body = { annotator: state.annotator, crop_id: crop.crop_id, label: fine.label, source: "page" };
    const { start, end } = segment();
    if (start !== null) Object.assign(body, { start_frame: start, end_frame: end });
    await api("/api/labels", { method: "POST", body });
    const where = start !== null ? ` (frames ${start}–${end})` : "";
    state.recent.unshift(`${fine.label}${where} · ${crop.clip_id} track ${crop.track_id}`);
    renderRecent();
    setStatus(`Labelled ${fine.label}${where}.`, "ok");
    await loadNext(crop.crop_id);
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
    setStatus("Skipped: it comes back at the end of the queue.");
  });
}

function onKey(event) {
  if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) return;
  if (!state.crop) {
    if (event.key === "z" && state.annotator) undo();
    return;
  }
  const controls = {
    " ": togglePlay, z: undo, n: skip, p: togglePreview,
    "[": () => setTrim("start"), "]": () => setTrim("end"),
    ArrowLeft: () => step(-1), ArrowRight: () => step(1),
  };
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (controls[key]) {
    event.preventDefault();
    controls[key]();
    return;
  }
  const fine = state.taxonomy.labels.find((f) => f.key.toLowerCase() === key);
  if (fine) {
    event.preventDefault();
    sendLabel(fine);
  }
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
  $("undo").addEventListener("click", undo);
  $("finished-undo").addEventListener("click", undo);
  $("skip").addEventListener("click", skip);
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

async function start() {
  wire();
  state.taxonomy = await api("/api/taxonomy");
  state.annotator = new URLSearchParams(window.location.search).get("annotator");
  if (!state.annotator) return showLogin();
  $("who").textContent = state.annotator;
  document.title = `${state.annotator} · vitcow labelling`;
  await guarded(() => loadNext(null));
}

start();
