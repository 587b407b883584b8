// The recorded voices and video of a session, kept in step with the replay's play head.
// The manifest lists each track (`media_tracks`: id, kind, member, uri "media/<file>",
// clock_offset_ms, layout, duration_ms); a track's media time t is session second
// clock_offset_ms / 1000 + t. Each voice is an <audio>, each video a (hidden) <video>
// drawn into the stereo canvas as one eye, side by side or anaglyph (as in the live view).
// On every play, pause, speed change and seek the elements are set to the play head;
// while playing, an element that drifts more than DRIFT_S from it is moved back.
import { el } from "./render.js";
import { drawStereo } from "./stereo.js";

export const DRIFT_S = 0.25;
const SEEK_JUMP_S = 0.5; // a play head further than this from where it should be was moved
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
    this.resyncs = 0;       // drift corrections (tests read this)
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
    const jumped = Math.abs(this.headAt(now) - p.seconds) > SEEK_JUMP_S;
    const changed = playing !== this.head.playing || speed !== this.head.speed || jumped;
    this.head = { seconds: p.seconds, playing, speed, at: now };
    this.sync(changed);
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
    const speed = Math.max(0.0625, Math.min(16, this.head.speed));
    if (media.playbackRate !== speed) media.playbackRate = speed;
    if (media.readyState >= 1 && !media.seeking) {
      const drift = Math.abs(media.currentTime - local);
      if ((force && drift > 0.05) || drift > DRIFT_S) {
        if (!force) this.resyncs++;
        media.currentTime = local;
      }
    } else if (media.readyState >= 1 && force) {
      media.currentTime = local;
    }
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
      playbackRate: t.el.playbackRate, decodedFrames: t.el.getVideoPlaybackQuality?.().totalVideoFrames ?? null,
    }));
  }
}
