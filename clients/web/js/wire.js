// The wire codec: one msgpack map per binary WebSocket frame (docs/protocol.md).
// HIDDEN (msgpack ext type 1, empty) marks a field that exists but is not for this role.
import { ExtensionCodec, decode as msgDecode, encode as msgEncode } from "../vendor/msgpack/index.mjs";

export const HIDDEN = Object.freeze({ hidden: true, toString: () => "hidden" });
export const isHidden = (value) => value === HIDDEN;
const HIDDEN_EXT = 1;

const codec = new ExtensionCodec();
codec.register({
  type: HIDDEN_EXT,
  encode: (value) => (value === HIDDEN ? new Uint8Array(0) : null),
  decode: () => HIDDEN,
});

export function decode(buffer) {
  return msgDecode(new Uint8Array(buffer), { extensionCodec: codec });
}

export function encode(message) {
  return msgEncode(message, { extensionCodec: codec });
}

/** Like `encode`, with floats as float32: how clients send poses. */
export function encodeSingle(message) {
  return msgEncode(message, { extensionCodec: codec, forceFloat32: true });
}
