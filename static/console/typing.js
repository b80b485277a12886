// Typing signals (an extension of the hub's sockets, asked for with `"typing": true` in
// the hello): who is typing where, heard from the hub and told to it. A signal is a hint:
// it holds for 6 s unless repeated (typists repeat it every 3 s), and goes at once when
// its typist stops, sends, or disconnects.

const HOLD_MS = 6000;
const REPEAT_MS = 3000;
const IDLE_MS = 5000;

export class Typing {
  /**
   * send(frame) → bool: sends a frame on the live socket; onChange(): who types changed.
   */
  constructor({ send, onChange }) {
    this.send = send;
    this.onChange = onChange;
    this.heard = new Map(); // key → {frame, timer}
    this.said = null; // {convId, kind, at}: what this console last said it types
    this.idle = null;
  }

  /** A `typing` frame from the hub. */
  hear(f) {
    const key = f.agent_id ? `a ${f.conversation_id} ${f.agent_id} ${f.kind}` : `c ${f.contact_id}`;
    const was = this.heard.get(key);
    if (was) clearTimeout(was.timer);
    if (f.active === true) {
      const timer = setTimeout(() => this.forget(key), HOLD_MS);
      this.heard.set(key, { frame: f, timer });
    } else {
      this.heard.delete(key);
    }
    this.onChange();
  }

  forget(key) {
    const was = this.heard.get(key);
    if (!was) return;
    clearTimeout(was.timer);
    this.heard.delete(key);
    this.onChange();
  }

  /** A live event: what was typed has arrived, so its typist no longer types. */
  seen(ev) {
    const d = ev.data || {};
    if (ev.kind === 'message.created' && d.message) this.forget(`c ${d.message.contact_id}`);
    const author = (d.reply || d.comment || {}).author;
    if (author && author.kind === 'agent') {
      this.forget(`a ${ev.conversation_id} ${author.id} ${d.reply ? 'reply' : 'comment'}`);
    }
  }

  /** Who types in conversation `conv` ({id, contact_id, session}): the customer first. */
  inConversation(conv, meId) {
    const out = [];
    for (const { frame: f } of this.heard.values()) {
      if (!f.agent_id && f.contact_id === conv.contact_id && conv.session === 'active') {
        out.unshift({ customer: true });
      } else if (f.agent_id && f.conversation_id === conv.id && f.agent_id !== meId) {
        out.push({ agentId: f.agent_id, kind: f.kind });
      }
    }
    return out;
  }

  /** Who types, for the list's rows: the customers typing (contact ids), and the
   * colleagues writing a reply, by conversation (not `meId`). */
  typists(meId) {
    const customers = new Set();
    const replying = new Map();
    for (const { frame: f } of this.heard.values()) {
      if (!f.agent_id) customers.add(f.contact_id);
      else if (f.kind === 'reply' && f.agent_id !== meId) {
        replying.set(f.conversation_id, [...(replying.get(f.conversation_id) || []), f.agent_id]);
      }
    }
    return { customers, replying };
  }

  /** This agent types (active) or not in `convId`'s reply or comment box. */
  say(convId, kind, active) {
    clearTimeout(this.idle);
    const now = Date.now();
    const s = this.said;
    const same = s && s.convId === convId && s.kind === kind;
    if (active) {
      this.idle = setTimeout(() => this.stop(), IDLE_MS);
      if (same && now - s.at < REPEAT_MS) return;
      if (this.send({ type: 'typing', conversation_id: convId, kind, active: true })) {
        this.said = { convId, kind, at: now };
      }
    } else if (same) {
      this.stop();
    }
  }

  /** This agent stopped typing (sent, emptied the box, went elsewhere, or paused). */
  stop() {
    clearTimeout(this.idle);
    const s = this.said;
    if (!s) return;
    this.said = null;
    this.send({ type: 'typing', conversation_id: s.convId, kind: s.kind, active: false });
  }

  /** Forgets everything heard (a fresh start). */
  clear() {
    for (const { timer } of this.heard.values()) clearTimeout(timer);
    this.heard.clear();
    this.said = null;
    clearTimeout(this.idle);
    this.onChange();
  }
}
