// Presenting, for a participant: ask to present, wait for the facilitator, share the
// stereo video (with a preview of what the room sees), stop. Pressing "Share stereo
// video" before being made presenter asks for it and shares once granted, so the
// button never dead-ends. Whether we present is the room's word (our avatar's
// `presenter` and `requests_present` fields), so it survives a reload with the session.

const STORE = "gr.present";

export class Presenting {
  constructor(conn, media, ui, report) {
    this.conn = conn;
    this.media = media;
    this.ui = ui; // {share, cancel, stop, status}
    this.report = report;
    this.wantShare = sessionStorage.getItem(STORE) === "share"; // shared before a reload
    this.presenter = false;
    this.requested = false;
    ui.share.addEventListener("click", () => this.share());
    ui.cancel.addEventListener("click", () => this.ask(false));
    ui.stop.addEventListener("click", () => this.stop());
    media.addEventListener("change", () => this.render());
  }

  remember(value) {
    if (value) sessionStorage.setItem(STORE, value); else sessionStorage.removeItem(STORE);
  }

  async share() {
    if (this.presenter) {
      this.remember("share");
      await this.media.shareStereo();
      this.render();
      return;
    }
    this.wantShare = true; // share as soon as the facilitator lets us
    this.remember("share");
    await this.ask(true);
  }

  async ask(on) {
    if (!on) { this.wantShare = false; this.remember(null); }
    const reply = await this.conn.intent("request_present", { on });
    if (reply.ok) this.asked = on;
    else if (reply.code === "unknown_action") {
      // A room without requests: the facilitator is asked in person; we share once they let us.
      this.asked = on;
      if (on) this.report("Ask the facilitator (in the chat or by voice) to make you presenter: your video starts as soon as they do.", false);
    } else {
      this.wantShare = false;
      this.remember(null);
      this.report(`Could not ask to present (${reply.code}): ${reply.msg}`, true);
    }
    this.render();
  }

  stop() {
    this.wantShare = false;
    this.remember(null);
    this.media.stopSharing();
    this.render();
  }

  /** Our avatar's fields changed (or the media did): follow the room's word. */
  update(avatar) {
    const presenter = avatar?.presenter === true;
    const requested = avatar?.requests_present === true;
    const revoked = this.presenter && !presenter;
    this.presenter = presenter;
    this.requested = requested;
    if (revoked && this.media.sharing) {
      this.media.stopSharing();
      this.report("The facilitator ended your presenting.", false);
    }
    if (presenter && this.wantShare && !this.media.sharing && !this.starting) {
      this.starting = true;
      this.media.shareStereo().finally(() => { this.starting = false; this.render(); });
    }
    this.render();
  }

  render() {
    const { share, cancel, stop, status } = this.ui;
    const sharing = this.media.sharing;
    const waiting = !this.presenter && (this.requested || this.wantShare);
    share.hidden = sharing || waiting;
    share.disabled = this.media.unavailable;
    share.textContent = this.presenter ? "Share stereo video" : "Ask to present and share stereo video";
    cancel.hidden = !waiting;
    stop.hidden = !sharing;
    status.textContent = sharing ? "You are presenting: the room sees your stereo video (preview below)."
      : waiting ? "You asked to present. Waiting for the facilitator to let you…"
      : this.presenter ? "The facilitator lets you present." : "";
  }
}
