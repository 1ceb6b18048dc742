// The crop page: when the crop video is paused (or moved to a frame), the context picture
// shows that frame on the clip, with the crop window drawn.
(function () {
  const video = document.getElementById("crop-video");
  const picture = document.getElementById("context");
  const label = document.getElementById("context-frame");
  const media = document.querySelector(".media");
  if (!video || !picture || !media) return;
  const fps = Number(media.dataset.fps), frames = Number(media.dataset.frames);
  function show() {
    const frame = Math.min(frames - 1, Math.max(0, Math.floor(video.currentTime * fps + 1e-3)));
    if (String(frame) === label.textContent) return;
    picture.src = picture.dataset.src + "?frame=" + frame;
    label.textContent = String(frame);
  }
  video.addEventListener("pause", show);
  video.addEventListener("seeked", () => { if (video.paused) show(); });
})();
