// Stereo frame layouts: where each eye's picture is in one video frame.

/** [x, y, w, h] of one eye (0 left, 1 right) in a w x h frame of the given layout
 * ("side-by-side", "top-bottom"; anything else is mono: both eyes see the whole frame). */
export function eyeRect(layout, eye, w, h) {
  if (layout === "side-by-side") return [(eye * w) / 2, 0, w / 2, h];
  if (layout === "top-bottom") return [0, (eye * h) / 2, w, h / 2];
  return [0, 0, w, h];
}
