// The checksum of a view's state: CRC-32 of its canonical msgpack encoding
// (docs/protocol.md "Checksums"; reference: netcode/codec.py `canonical`).
// JS Maps keep their keys' types (the mirror's entities and poses); for plain objects
// from the decoder, wire.js remembers which keys were integers; any other key is a string.
import { HIDDEN, integerKeysOf } from "./wire.js";

const utf8 = new TextEncoder();

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

class Writer {
  constructor() {
    this.buf = new Uint8Array(4096);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v) { this.reserve(1); this.buf[this.len++] = v; }
  u16(v) { this.reserve(2); this.view.setUint16(this.len, v); this.len += 2; }
  u32(v) { this.reserve(4); this.view.setUint32(this.len, v); this.len += 4; }
  bytes(b) { this.reserve(b.length); this.buf.set(b, this.len); this.len += b.length; }
  result() { return this.buf.subarray(0, this.len); }
}

function writeInt(w, n) {
  if (n >= 0) {
    if (n < 0x80) w.u8(n);
    else if (n < 0x100) { w.u8(0xcc); w.u8(n); }
    else if (n < 0x10000) { w.u8(0xcd); w.u16(n); }
    else if (n < 0x100000000) { w.u8(0xce); w.u32(n); }
    else { w.u8(0xcf); w.reserve(8); w.view.setBigUint64(w.len, BigInt(n)); w.len += 8; }
  } else if (n >= -32) w.u8(n & 0xff);
  else if (n >= -0x80) { w.u8(0xd0); w.u8(n & 0xff); }
  else if (n >= -0x8000) { w.u8(0xd1); w.u16(n & 0xffff); }
  else if (n >= -0x80000000) { w.u8(0xd2); w.u32(n >>> 0); }
  else { w.u8(0xd3); w.reserve(8); w.view.setBigInt64(w.len, BigInt(n)); w.len += 8; }
}

function writeHeader(w, n, fix, fixMax, c16, c32) {
  if (n <= fixMax) w.u8(fix | n);
  else if (n < 0x10000) { w.u8(c16); w.u16(n); }
  else { w.u8(c32); w.u32(n); }
}

function writeString(w, s) {
  const b = utf8.encode(s);
  if (b.length < 32) w.u8(0xa0 | b.length);
  else if (b.length < 0x100) { w.u8(0xd9); w.u8(b.length); }
  else if (b.length < 0x10000) { w.u8(0xda); w.u16(b.length); }
  else { w.u8(0xdb); w.u32(b.length); }
  w.bytes(b);
}

function compareKeys(a, b) {
  if (a.isInt !== b.isInt) return a.isInt ? -1 : 1;
  if (a.isInt) return a.key - b.key;
  const x = a.bytes, y = b.bytes;
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function sortedEntries(value) {
  const raw = value instanceof Map ? [...value.entries()] : Object.entries(value);
  const ints = value instanceof Map ? undefined : integerKeysOf(value);
  const keyed = raw.map(([k, v]) => {
    if (typeof k === "number") return { key: k, isInt: true, value: v };
    if (ints && ints.has(k)) return { key: Number(k), isInt: true, value: v };
    return { key: k, isInt: false, bytes: utf8.encode(k), value: v };
  });
  return keyed.sort(compareKeys);
}

function write(w, value) {
  if (value === null || value === undefined) w.u8(0xc0);
  else if (value === HIDDEN) { w.u8(0xc7); w.u8(0); w.u8(1); }
  else if (value === true) w.u8(0xc3);
  else if (value === false) w.u8(0xc2);
  else if (typeof value === "number") {
    if (Number.isInteger(value) && Math.abs(value) < 2 ** 63) writeInt(w, value);
    else { w.u8(0xcb); w.reserve(8); w.view.setFloat64(w.len, value); w.len += 8; }
  } else if (typeof value === "string") writeString(w, value);
  else if (value instanceof Uint8Array) {
    if (value.length < 0x100) { w.u8(0xc4); w.u8(value.length); }
    else if (value.length < 0x10000) { w.u8(0xc5); w.u16(value.length); }
    else { w.u8(0xc6); w.u32(value.length); }
    w.bytes(value);
  } else if (Array.isArray(value)) {
    writeHeader(w, value.length, 0x90, 15, 0xdc, 0xdd);
    for (const item of value) write(w, item);
  } else {
    const entries = sortedEntries(value);
    writeHeader(w, entries.length, 0x80, 15, 0xde, 0xdf);
    for (const entry of entries) {
      if (entry.isInt) writeInt(w, entry.key); else writeString(w, entry.key);
      write(w, entry.value);
    }
  }
}

/** The canonical msgpack bytes of a value (exported for tests against the Python codec). */
export function canonicalBytes(value) {
  const w = new Writer();
  write(w, value);
  return w.result();
}

export function checksum(viewState) {
  return crc32(canonicalBytes(viewState));
}
