// Pose quantization (docs/protocol.md "Pose quantization"): millimetre positions and
// 32-bit "smallest three" quaternions; plus the interpolation the 3D view uses.
const BITS = 10;
const MAX = (1 << BITS) - 1;
const RANGE = 1 / Math.SQRT2;

function dequantizeQuaternion(packed) {
  const largest = (packed >>> 30) & 3;
  const others = [20, 10, 0].map((shift) => ((packed >>> shift) & MAX) / MAX * 2 * RANGE - RANGE);
  const implied = Math.sqrt(Math.max(0, 1 - others.reduce((s, c) => s + c * c, 0)));
  others.splice(largest, 0, implied);
  return others; // [qx, qy, qz, qw]
}

/** [x_mm, y_mm, z_mm, q] -> {p: [x, y, z] metres, q: [qx, qy, qz, qw]} */
export function dequantize([x, y, z, q]) {
  return { p: [x / 1000, y / 1000, z / 1000], q: dequantizeQuaternion(q) };
}

/** A raw pose as the wire wants it: [x, y, z, qx, qy, qz, qw]. */
export function rawPose(position, quaternion) {
  return [position[0], position[1], position[2], quaternion[0], quaternion[1], quaternion[2], quaternion[3]];
}

export function yawQuaternion(yaw, pitch = 0) {
  // yaw about +Y, then pitch about the local +X
  const cy = Math.cos(yaw / 2), sy = Math.sin(yaw / 2);
  const cp = Math.cos(pitch / 2), sp = Math.sin(pitch / 2);
  return [cy * sp, sy * cp, -sy * sp, cy * cp];
}
