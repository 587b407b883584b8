// The recorded voices and video of a session, kept in step with the replay's play head.
// The manifest lists each track (`media_tracks`: id, kind, member, uri "media/<file>",
// clock_offset_ms, layout, duration_ms); a track's media time t is session second
// clock_offset_ms / 1000 + t. Each voice is an <audio>, each video a (hidden) <video>
// drawn into the stereo canvas as one eye, side by side or anaglyph (as in the live view).
// On every play, pause, speed change and seek the elements are set to the play head.
//
// Keeping in step at 4x and 16x. The play head is modelled from the state frames (30 a
// second, each the server's tick): between frames it runs on at the playback speed, and
// each frame pulls the model gently towards the frame's time, so network jitter (which
// at 16x is sixteen times larger in session time) does not shake it; a frame far off
// the model is a seek and resets it. An element that drifts a little from the model is
// nudged (its playbackRate a few percent faster or slower until it is back); only a
// large drift is corrected by setting currentTime, aimed ahead by the time seeking
// takes at that speed (measured), so a correction does not start the next one. At the
// top speed an element cannot be nudged faster, and Chromium's audio falls behind at
// 16x (it plays about 15.4 seconds a second): there each correction aims a little
// ahead, so the element drifts back through the head instead of only ever lagging.
import { el } from "./render.js";
import { drawStereo } from "./stereo.js";

export const DRIFT_S = 0.12; // tolerated drift at 1x, in session seconds
const DRIFT_PER_SPEED_S = 0.04; // and more per unit of speed (a frame carries more time)
const SEEK_FACTOR = 3; // beyond this many tolerances, seek instead of nudging
const NUDGE = 0.2; // the most a nudge changes the playback rate (pitch is preserved)
const PULL = 0.15; // how far each frame pulls the play head model towards it
const JUMP_S = 1.0; // a frame this far from the model (times the speed) was a seek
const MIN_RATE = 0.0625, MAX_RATE = 16; // what media elements accept
const CHECK_MS = 250;

export class ReplayMedia {
  /** ui: {section, status, audio, stereo, mode}; mediaUrl(file) gives a track file's URL. */
  constructor(ui, mediaUrl) {
    this.ui = ui;
    this.mediaUrl = mediaUrl;
    this.tracks = [];       // {id, kind, member, layout, offset, duration, el}
    this.head = { seconds: 0, playing: false, speed: 1, at: performance.now() };
    this.shown = null;      // {video, layout, track} drawn in the stereo canvas
    this.drawing = false;
    this.lastCheck = 0;
    this.blocked = false;   // the browser refused to start playback without a gesture
    this.resyncs = 0;       // drift corrections by seeking (tests read this)
    this.seekLatency = 0.08; // seconds an element takes to seek (measured, smoothed)
  }

  /** Build the elements for the manifest's tracks; `nameOf(member)` names a speaker; media
   * tracks are listed only once the session has `ended`. */
  load(mediaTracks, nameOf, ended = true) {
    this.tracks = [];
    this.ui.audio.replaceChildren();
    for (const t of mediaTracks || []) {
      const file = String(t.uri || "").replace(/^media\//, "");
      if (!file || !(t.frames > 0) || (t.kind !== "audio" && t.kind !== "video")) continue;
      const who = nameOf(t.member);
      const track = {
        id: t.id, kind: t.kind, member: t.member, layout: t.layout || "mono",
        offset: Number(t.clock_offset_ms || 0) / 1000,
        duration: Number(t.duration_ms || 0) / 1000,
        el: null,
      };
      if (t.kind === "audio") {
        track.el = el("audio", { preload: "auto", "data-track": t.id, "aria-label": `Recorded voice of ${who}` });
        this.ui.audio.append(track.el);
      } else {
        track.el = el("video", {
          preload: "auto", muted: true, playsinline: true, "data-track": t.id,
          class: "sr-only", "aria-label": `Recorded video from ${who}`, "aria-hidden": "true",
        });
        track.el.muted = true;
        this.ui.stereo.querySelector(".video-source").append(track.el);
      }
      track.el.addEventListener("loadedmetadata", () => {
        if (!track.duration && Number.isFinite(track.el.duration)) track.duration = track.el.duration;
        this.syncOne(track, this.headAt(performance.now()), true);
      });
      track.el.addEventListener("seeking", () => { track.seekStarted = performance.now(); });
      track.el.addEventListener("seeked", () => {
        if (!track.seekStarted) return;
        const took = Math.min(0.5, (performance.now() - track.seekStarted) / 1000);
        this.seekLatency = 0.7 * this.seekLatency + 0.3 * took;
        track.seekStarted = 0;
      });
      track.el.src = this.mediaUrl(file);
      this.tracks.push(track);
    }
    const voices = this.tracks.filter((t) => t.kind === "audio").length;
    const videos = this.tracks.length - voices;
    this.ui.section.hidden = false;
    this.ui.status.textContent = this.tracks.length
      ? `Recorded: ${voices} voice${voices === 1 ? "" : "s"}${videos ? ` and ${videos} video${videos === 1 ? "" : "s"}` : ""}, played in step with the timeline.`
      : ended ? "No voice or video was recorded in this session."
        : "The session is still running: its voices and video are listed once it has ended.";
    this.sync(true);
  }

  /** Name the speakers again (their names may be known only once the timeline is read). */
  relabel(nameOf) {
    for (const t of this.tracks) {
      const who = nameOf(t.member);
      t.el.setAttribute("aria-label", t.kind === "audio" ? `Recorded voice of ${who}` : `Recorded video from ${who}`);
    }
  }

  /** The session second the play head is at now (extrapolated between playback messages). */
  headAt(now) {
    const h = this.head;
    return h.playing ? h.seconds + ((now - h.at) / 1000) * h.speed : h.seconds;
  }

  /** A `playback` message {seconds, playing, speed, end}: set every element to match. */
  onPlayback(p) {
    const now = performance.now();
    const playing = !!p.playing && !p.end;
    const speed = Number(p.speed) || 1;
    const jumped = Math.abs(this.headAt(now) - p.seconds) > JUMP_S * Math.max(1, speed);
    const changed = playing !== this.head.playing || speed !== this.head.speed || jumped;
    if (changed) this.head = { seconds: p.seconds, playing, speed, at: now };
    this.sync(changed);
  }

  /** A state frame for session second `seconds` is on screen: keep the model with it. */
  onFrame(seconds) {
    const now = performance.now();
    const h = this.head;
    const predicted = this.headAt(now);
    const error = seconds - predicted;
    if (!h.playing || Math.abs(error) > JUMP_S * Math.max(1, h.speed)) {
      const moved = Math.abs(error) > JUMP_S * Math.max(1, h.speed);
      this.head = { ...h, seconds, at: now };
      if (moved) this.sync(true);
      return;
    }
    this.head = { ...h, seconds: predicted + PULL * error, at: now };
  }

  /** The user moved the play head: go there at once (the server's playback message follows). */
  seekTo(seconds) {
    this.head = { ...this.head, seconds, at: performance.now() };
    this.sync(true);
  }

  /** Called every animation frame: corrects drift a few times a second. */
  tick(now) {
    if (now - this.lastCheck < CHECK_MS || !this.tracks.length) return;
    this.lastCheck = now;
    this.sync(false);
  }

  sync(force) {
    const t = this.headAt(performance.now());
    for (const track of this.tracks) this.syncOne(track, t, force);
    this.showVideo(t);
  }

  inRange(track, t) {
    const local = t - track.offset;
    return local >= 0 && (!track.duration || local < track.duration);
  }

  syncOne(track, t, force) {
    const media = track.el;
    const local = t - track.offset;
    const inside = this.inRange(track, t);
    if (!inside) {
      if (!media.paused) media.pause();
      // Park it where it will start (or at its end), ready to play when the head gets there.
      const park = local < 0 ? 0 : track.duration || media.duration || 0;
      if (force && media.readyState >= 1 && Number.isFinite(park) && Math.abs(media.currentTime - park) > DRIFT_S) {
        media.currentTime = park;
      }
      return;
    }
    const speed = Math.max(MIN_RATE, Math.min(MAX_RATE, this.head.speed));
    const tolerance = Math.max(DRIFT_S, DRIFT_PER_SPEED_S * speed);
    let rate = speed;
    if (media.readyState >= 1 && !media.seeking) {
      const ahead = media.currentTime - local; // > 0: the element is ahead of the head
      const drift = Math.abs(ahead);
      const cannotCatchUp = ahead < 0 && speed * (1 + NUDGE / 2) > MAX_RATE; // at 16x
      if ((force && drift > 0.05) || drift > (cannotCatchUp ? 1 : SEEK_FACTOR) * tolerance) {
        if (!force) this.resyncs++;
        let lead = this.head.playing ? speed * this.seekLatency : 0; // it moves on meanwhile
        if (cannotCatchUp && !force) lead += 0.8 * tolerance;
        media.currentTime = Math.max(0, local + lead);
      } else if (this.head.playing && drift > tolerance / 2) {
        rate = speed * (1 - Math.sign(ahead) * Math.min(NUDGE, drift / tolerance * NUDGE / 2));
      }
    } else if (media.readyState >= 1 && force) {
      media.currentTime = local;
    }
    rate = Math.max(MIN_RATE, Math.min(MAX_RATE, rate));
    if (Math.abs(media.playbackRate - rate) > 1e-3) media.playbackRate = rate;
    if (this.head.playing && media.paused) {
      media.play().then(() => { this.blocked = false; }).catch((err) => {
        if (err.name === "NotAllowedError" && !this.blocked) {
          this.blocked = true;
          this.ui.status.textContent = "The browser blocked playback of the recorded voices: press Play again to hear them.";
        }
      });
    } else if (!this.head.playing && !media.paused) {
      media.pause();
    }
  }

  /** Show the first video track recorded at this moment; hide the stereo view otherwise. */
  showVideo(t) {
    const track = this.tracks.find((x) => x.kind === "video" && this.inRange(x, t)) || null;
    if (!track) {
      this.shown = null;
      this.ui.stereo.hidden = true;
      return;
    }
    if (this.shown?.track !== track.id) {
      this.shown = { video: track.el, layout: track.layout, track: track.id };
      this.ui.stereo.hidden = false;
    }
    if (!this.drawing) {
      this.drawing = true;
      drawStereo(this.ui.stereo.querySelector("canvas"), this.ui.mode, () => this.shown,
        () => { this.drawing = false; });
    }
  }

  /** Per-element state for tests and diagnostics. */
  state() {
    return this.tracks.map((t) => ({
      id: t.id, kind: t.kind, offset: t.offset, duration: t.duration,
      readyState: t.el.readyState, currentTime: t.el.currentTime, paused: t.el.paused,
      playbackRate: t.el.playbackRate, speed: this.head.speed, decodedFrames: t.el.getVideoPlaybackQuality?.().totalVideoFrames ?? null,
    }));
  }
}
