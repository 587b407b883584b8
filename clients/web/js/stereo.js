// Stereo frame layouts: where each eye's picture is in one video frame.

/** [x, y, w, h] of one eye (0 left, 1 right) in a w x h frame of the given layout
 * ("side-by-side", "top-bottom"; anything else is mono: both eyes see the whole frame). */
export function eyeRect(layout, eye, w, h) {
  if (layout === "side-by-side") return [(eye * w) / 2, 0, w / 2, h];
  if (layout === "top-bottom") return [0, (eye * h) / 2, w, h / 2];
  return [0, 0, w, h];
}

/** Draw `current()` ({video, layout} or null) into `canvas` every animation frame, as the
 * viewer chose in `mode` (a select: "one-eye", "side-by-side", "anaglyph" red/cyan). Stops
 * (and calls `stopped`) once `current()` returns null. Shared by the live and replay views. */
export function drawStereo(canvas, mode, current, stopped = () => {}) {
  const ctx = canvas.getContext("2d");
  const scratch = document.createElement("canvas");
  const sctx = scratch.getContext("2d");
  const tint = (c, source, rect, colour) => {
    c.globalCompositeOperation = "source-over";
    c.drawImage(source, ...rect, 0, 0, rect[2], rect[3]);
    c.globalCompositeOperation = "multiply";
    c.fillStyle = colour;
    c.fillRect(0, 0, rect[2], rect[3]);
  };
  const draw = () => {
    const shown = current();
    if (!shown) {
      stopped();
      return;
    }
    const { video, layout } = shown;
    if (video.videoWidth && video.readyState >= 2) {
      const w = video.videoWidth, h = video.videoHeight;
      const how = layout === "mono" ? "whole" : mode.value;
      const left = eyeRect(layout, 0, w, h), right = eyeRect(layout, 1, w, h);
      if (how === "side-by-side" || how === "whole") {
        canvas.width = w; canvas.height = h;
        ctx.drawImage(video, 0, 0);
      } else if (how === "one-eye") {
        [canvas.width, canvas.height] = [left[2], left[3]];
        ctx.drawImage(video, ...left, 0, 0, left[2], left[3]);
      } else {
        [canvas.width, canvas.height] = [left[2], left[3]];
        [scratch.width, scratch.height] = [left[2], left[3]];
        tint(ctx, video, left, "#f00");
        tint(sctx, video, right, "#0ff");
        ctx.globalCompositeOperation = "lighter";
        ctx.drawImage(scratch, 0, 0);
        ctx.globalCompositeOperation = "source-over";
      }
    }
    requestAnimationFrame(draw);
  };
  requestAnimationFrame(draw);
}
