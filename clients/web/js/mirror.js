// The browser's copy of one view of a room, kept equal to the server's by applying
// state frames in order (reference: netcode/mirror.py). Entities and poses are Maps
// keyed by integer id; logs keep the newest LOG_TAIL entries per channel.
import { checksum } from "./checksum.js";

const LOG_TAIL = 50;

export class Desync extends Error {}

const intKeyed = (obj) => new Map(Object.entries(obj || {}).map(([k, v]) => [Number(k), v]));

export class Mirror {
  constructor() {
    this.tick = null;
    this.op = 0;
    this.entities = new Map(); // id -> [kind, fields]
    this.logs = {};            // channel -> entries, oldest first
    this.poses = new Map();    // id -> [x_mm, y_mm, z_mm, q]
    this.snapshots = 0;
    this.deltas = 0;
  }

  /** Apply one decoded state frame; returns what changed: {ops, poses: ids, full}. */
  apply(frame) {
    const changes = { full: "full" in frame, ops: [], poses: [] };
    if (changes.full) this.applySnapshot(frame.full);
    else this.applyDelta(frame, changes);
    this.tick = frame.k;
    this.op = frame.o;
    if ("c" in frame && frame.c !== this.checksum()) {
      throw new Desync(`checksum mismatch at tick ${frame.k}`);
    }
    return changes;
  }

  applySnapshot(full) {
    this.entities = new Map();
    for (const [id, [kind, fields]] of intKeyed(full.e)) this.entities.set(id, [kind, { ...fields }]);
    this.logs = {};
    for (const [channel, entries] of Object.entries(full.l || {})) this.logs[channel] = [...entries];
    this.poses = intKeyed(full.p);
    this.snapshots++;
  }

  applyDelta(frame, changes) {
    if ("b" in frame) {
      if (frame.b !== this.tick) throw new Desync(`delta against tick ${frame.b}, mirror holds ${this.tick}`);
    } else if (frame.r !== this.op) {
      throw new Desync(`resume delta from op ${frame.r}, mirror holds op ${this.op}`);
    }
    for (const op of frame.ops || []) {
      this.applyOp(op);
      changes.ops.push(op);
    }
    const poses = intKeyed(frame.p);
    if (frame.pf) this.poses = poses;
    else {
      for (const [id, pose] of poses) this.poses.set(id, pose);
      for (const id of frame.g || []) this.poses.delete(id);
    }
    changes.poses = [...poses.keys()];
    this.deltas++;
  }

  applyOp(op) {
    const [name] = op;
    if (name === "new") {
      const [, id, kind, fields] = op;
      this.entities.set(id, [kind, { ...fields }]);
    } else if (name === "set") {
      const [, id, field, value] = op;
      const entity = this.entities.get(id);
      if (!entity) throw new Desync(`op on entity ${id}, which the mirror does not hold`);
      entity[1][field] = value;
    } else if (name === "del") {
      this.entities.delete(op[1]);
      this.poses.delete(op[1]);
    } else if (name === "log") {
      const [, channel, entry] = op;
      const tail = (this.logs[channel] ||= []);
      tail.push(entry);
      if (tail.length > LOG_TAIL) tail.splice(0, tail.length - LOG_TAIL);
    } else {
      throw new Desync(`unknown op ${JSON.stringify(op)}`);
    }
  }

  checksum() {
    return checksum({ e: this.entities, l: this.logs, p: this.poses });
  }

  /** Entities of one kind: Map id -> fields. */
  find(kind) {
    const out = new Map();
    for (const [id, [k, fields]] of this.entities) if (k === kind) out.set(id, fields);
    return out;
  }

  first(kind) {
    for (const [id, [k, fields]] of this.entities) if (k === kind) return { id, fields };
    return null;
  }
}
