// The wire codec: one msgpack map per binary WebSocket frame (docs/protocol.md).
// HIDDEN (msgpack ext type 1, empty) marks a field that exists but is not for this role.
// Decoded maps are plain objects; which of their keys were msgpack integers (JS turns
// every property name into a string) is kept aside, for the canonical form checksums use.
import { Decoder, ExtensionCodec, encode as msgEncode } from "../vendor/msgpack/index.mjs";

export const HIDDEN = Object.freeze({ hidden: true, toString: () => "hidden" });
export const isHidden = (value) => value === HIDDEN;
const HIDDEN_EXT = 1;

const codec = new ExtensionCodec();
codec.register({
  type: HIDDEN_EXT,
  encode: (value) => (value === HIDDEN ? new Uint8Array(0) : null),
  decode: () => HIDDEN,
});

const intKeys = new WeakMap(); // decoded map -> Set of its keys that were integers

/** The keys of a decoded map that were integers on the wire (undefined if none). */
export const integerKeysOf = (map) => intKeys.get(map);

class KeyTypedDecoder extends Decoder {
  pushMapState(size) {
    super.pushMapState(size);
    const state = this.stack[this.stack.length - 1];
    const map = state.map;
    let key = null;
    Object.defineProperty(state, "key", {
      get: () => key,
      set: (value) => {
        key = value;
        if (typeof value !== "number") return;
        let found = intKeys.get(map);
        if (!found) intKeys.set(map, (found = new Set()));
        found.add(String(value));
      },
    });
  }
}

const decoder = new KeyTypedDecoder({ extensionCodec: codec });

export function decode(buffer) {
  return decoder.decode(new Uint8Array(buffer));
}

export function encode(message) {
  return msgEncode(message, { extensionCodec: codec });
}

/** Like `encode`, with floats as float32: how clients send poses. */
export function encodeSingle(message) {
  return msgEncode(message, { extensionCodec: codec, forceFloat32: true });
}
