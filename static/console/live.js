// The console's live socket (PROTOCOL §7): hello with the token, `since` = the last seq
// seen and the store's `epoch` on every reconnect, exponential backoff, dedupe by seq,
// ping/pong to notice dead connections.

export class LiveSocket {
  /**
   * opts: url, token() → string, onWelcome(welcome, {fresh}), onEvent(frame),
   * onStatus('connecting'|'live'|'reconnecting'|'stopped'), onUnauthorized(), onError(frame)
   */
  constructor(opts) {
    this.opts = opts;
    this.lastSeq = null;
    this.epoch = null;
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.timer = null;
    this.pingTimer = null;
    this.pongDeadline = null;
    this.ready = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.clearHeartbeat();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000, 'bye'); } catch { /* already closed */ }
    }
    this.ready = false;
    this.opts.onStatus?.('stopped');
  }

  /** Sends a frame when the socket is ready; false otherwise. */
  send(frame) {
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    if (this.stopped) return;
    this.opts.onStatus?.(this.lastSeq === null ? 'connecting' : 'reconnecting');
    let ws;
    try {
      ws = new WebSocket(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      // typing: the hub's typing signals too (an extension)
      const hello = { type: 'hello', token: this.opts.token(), typing: true };
      if (this.lastSeq !== null) {
        hello.since = this.lastSeq;
        if (this.epoch) hello.epoch = this.epoch;
      }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (m) => {
      if (ws !== this.ws) return;
      let f;
      try { f = JSON.parse(m.data); } catch { return; }
      this.pongDeadline = null;
      this.onFrame(f);
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.ready = false;
      this.clearHeartbeat();
      if (this.stopped) return;
      if (e.code === 4401) {
        this.stopped = true;
        this.opts.onStatus?.('stopped');
        this.opts.onUnauthorized?.();
        return;
      }
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  onFrame(f) {
    switch (f.type) {
      case 'welcome': {
        const fresh = this.lastSeq === null || f.reset === true;
        if (fresh) this.lastSeq = f.seq;
        this.epoch = f.epoch || this.epoch;
        this.ready = true;
        this.attempt = 0;
        this.startHeartbeat();
        this.opts.onStatus?.('live');
        this.opts.onWelcome?.(f, { fresh });
        break;
      }
      case 'event':
        if (typeof f.seq === 'number') {
          if (this.lastSeq !== null && f.seq <= this.lastSeq) return; // seen already
          this.lastSeq = f.seq;
        }
        this.opts.onEvent?.(f);
        break;
      case 'pong':
        break;
      case 'error':
        this.opts.onError?.(f);
        break;
      default:
        this.opts.onFrame?.(f);
    }
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.opts.onStatus?.('reconnecting');
    const base = Math.min(10000, 500 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * base / 2;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Pings every 15 s; a socket silent for 10 s after a ping is dropped and resumed. */
  startHeartbeat() {
    this.clearHeartbeat();
    this.lastPing = Date.now();
    this.pingTimer = setInterval(() => {
      if (!this.ws) return;
      if (this.pongDeadline && Date.now() > this.pongDeadline) {
        const ws = this.ws;
        this.ws = null;
        this.ready = false;
        try { ws.close(); } catch { /* ignore */ }
        this.clearHeartbeat();
        this.scheduleReconnect();
        return;
      }
      if (!this.pongDeadline && Date.now() - this.lastPing >= 15000 && this.send({ type: 'ping' })) {
        this.lastPing = Date.now();
        this.pongDeadline = this.lastPing + 10000;
      }
    }, 5000);
  }

  clearHeartbeat() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.pongDeadline = null;
  }
}
