// One WebSocket session with a room: hello/welcome, state frames into a Mirror (acks,
// resync on desync), intents with replies, poses, and resume after a dropped link.
// Events (EventTarget): "welcome", "state" (detail: changes), "error-msg" (detail: {code, msg}),
// "bye", "status" (detail: text), "rtc" (detail: message), "playback" (a review's play head).
import { decode, encode, encodeSingle } from "./wire.js";
import { Desync, Mirror } from "./mirror.js";

const PROTOCOL_VERSION = 1;
const ACK_EVERY_TICKS = 10;
// A spectator only watches: it acks every 5 s (docs/protocol.md, "Session flow").
const WATCHER_ACK_SECONDS = 5;
const KEEPALIVE_MS = 10_000;
const REPLY_TIMEOUT_MS = 10_000;
const MAX_PENDING_REPLIES = 64;
const MAX_RECONNECTS = 10;
const FATAL_BYE = new Set([
  "bad_token", "token_expired", "wrong_room", "unknown_room", "room_ended", "room_full",
  "version_mismatch", "too_many_errors", "removed", "unknown_session", "bad_session",
]);

export function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/** Where a page keeps its session, so a reload resumes the same member (per tab). */
function sessionKey(token) {
  return `gr.session.${token.slice(-24)}`;
}

export class RoomConnection extends EventTarget {
  constructor({ url, token, room }) {
    super();
    this.url = url;
    this.token = token;
    this.room = room;
    // A session this tab had before a reload: resumed on the first hello.
    this.stored = JSON.parse(sessionStorage.getItem(sessionKey(token)) || "null");
    this.mirror = new Mirror();
    this.welcome = null;
    this.bye = null;
    this.frames = 0;
    this.bytes = 0;
    this.resyncs = 0;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.awaitingSnapshot = true;
    this.lastAck = 0;
    this.ackEvery = ACK_EVERY_TICKS;
    this.lastSent = 0;
    this.reconnects = 0;
    this.keepalive = setInterval(() => this.keepAlive(), KEEPALIVE_MS);
  }

  get role() { return this.welcome ? this.welcome.role : null; }
  get connected() { return this.ws !== null && this.ws.readyState === WebSocket.OPEN; }

  open(resume = false) {
    this.status(resume ? "Reconnecting…" : "Connecting…");
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const hello = { t: "hello", v: PROTOCOL_VERSION, token: this.token };
      if (this.room) hello.room = this.room;
      if (resume && this.welcome && this.mirror.tick !== null) {
        hello.resume = { session: this.welcome.session, tick: this.mirror.tick, op: this.mirror.op };
      } else if (!this.welcome && this.stored) {
        // A reloaded page holds no state: resume the member, then ask for a snapshot.
        hello.resume = { session: this.stored.session, tick: 0, op: 0 };
        this.reloaded = true;
      }
      this.awaitingSnapshot = !resume;
      this.send(hello);
    };
    ws.onmessage = (event) => {
      this.bytes += event.data.byteLength;
      let message;
      try {
        message = decode(event.data);
      } catch (err) {
        this.emit("error-msg", { code: "bad_frame", msg: `undecodable message from the server (${err.message})` });
        return;
      }
      this.handle(message);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending("the connection closed before the reply came");
      if (this.bye && FATAL_BYE.has(this.bye.code)) {
        this.status("Disconnected");
        return;
      }
      if (this.reconnects >= MAX_RECONNECTS) {
        this.status("Disconnected: could not reconnect");
        return;
      }
      this.reconnects++;
      // In a cluster the server says where the room lives (bye "moved"); when our node is
      // gone, the other nodes welcome listed can find it (docs/protocol.md).
      const moved = this.bye && this.bye.code === "moved" && this.bye.ws;
      if (moved) {
        this.url = this.bye.ws;
      } else if (this.welcome && Array.isArray(this.welcome.nodes) && this.welcome.nodes.length) {
        const nodes = this.welcome.nodes;
        this.url = nodes[(nodes.indexOf(this.url) + 1) % nodes.length];
      }
      this.bye = null;
      this.status("Connection lost; reconnecting…");
      const delay = moved ? 0 : Math.min(8000, 250 * 2 ** this.reconnects);
      setTimeout(() => this.open(this.welcome !== null), delay);
    };
  }

  close() {
    clearInterval(this.keepalive);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
  }

  send(message) {
    if (!this.connected) return false;
    this.ws.send(encode(message));
    this.lastSent = performance.now();
    return true;
  }

  keepAlive() {
    if (this.connected && performance.now() - this.lastSent > KEEPALIVE_MS && this.mirror.tick !== null) {
      this.send({ t: "ack", tick: this.mirror.tick });
    }
  }

  /** Send an intent; resolves to the reply {ok, code, msg}. */
  intent(action, args = {}) {
    if (this.pending.size >= MAX_PENDING_REPLIES) {
      return Promise.resolve({ ok: false, code: "busy", msg: "Too many actions are waiting for an answer." });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, code: "timeout", msg: "The server did not answer in time." });
      }, REPLY_TIMEOUT_MS);
      this.pending.set(id, (reply) => { clearTimeout(timer); resolve(reply); });
      if (!this.send({ t: "intent", id, do: action, args })) {
        this.pending.get(id)({ ok: false, code: "offline", msg: "Not connected to the room." });
        this.pending.delete(id);
      }
    });
  }

  /** parts: {head?, left?, right?, objects?} each [x, y, z, qx, qy, qz, qw] in metres. */
  sendPose(parts) {
    if (!this.connected) return;
    this.ws.send(encodeSingle({ t: "pose", ...parts }));
    this.lastSent = performance.now();
  }

  sendRtc(message) {
    return this.send({ t: "rtc", ...message });
  }

  failPending(msg) {
    for (const resolve of this.pending.values()) resolve({ ok: false, code: "offline", msg });
    this.pending.clear();
  }

  handle(message) {
    switch (message.t) {
      case "welcome":
        this.welcome = message;
        this.reconnects = 0;
        this.ackEvery = message.role === "spectator"
          ? Math.max(ACK_EVERY_TICKS, WATCHER_ACK_SECONDS * message.tick_hz)
          : ACK_EVERY_TICKS;
        sessionStorage.setItem(sessionKey(this.token), JSON.stringify({ session: message.session, member: message.member }));
        if (this.reloaded && message.resumed) this.send({ t: "resync", reason: "the page was reloaded" });
        this.reloaded = false;
        this.status(message.resumed ? "Connected (resumed)" : "Connected");
        this.emit("welcome", message);
        break;
      case "s":
        this.frames++;
        this.applyFrame(message);
        if (message.k - this.lastAck >= this.ackEvery) {
          this.lastAck = message.k;
          this.send({ t: "ack", tick: message.k });
        }
        break;
      case "reply": {
        const resolve = this.pending.get(message.id);
        if (resolve) {
          this.pending.delete(message.id);
          resolve({ ok: !!message.ok, code: message.code || "", msg: message.msg || "" });
        }
        break;
      }
      case "error":
        this.emit("error-msg", { code: message.code, msg: message.msg });
        break;
      case "bye":
        this.bye = { code: message.code, msg: message.msg, ws: message.ws };
        if (FATAL_BYE.has(message.code)) sessionStorage.removeItem(sessionKey(this.token));
        this.emit("bye", this.bye);
        break;
      case "rtc":
        this.emit("rtc", message);
        break;
      case "nodes":
        // The cluster's nodes changed: where to look for the room should ours go.
        if (this.welcome) this.welcome.nodes = message.nodes;
        break;
      case "playback":
        this.emit("playback", message);
        break;
      default:
        break;
    }
  }

  applyFrame(frame) {
    if ("full" in frame) this.awaitingSnapshot = false;
    else if (this.awaitingSnapshot) return;
    try {
      const changes = this.mirror.apply(frame);
      this.emit("state", changes);
    } catch (err) {
      if (!(err instanceof Desync)) throw err;
      this.resyncs++;
      this.awaitingSnapshot = true;
      this.send({ t: "resync", reason: "desync" });
    }
  }

  status(text) { this.emit("status", text); }
  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}
