// Automatic away: an agent who left the console open is not there to answer, and the
// widget would tell customers someone is online all night. After `idleMs` without a
// key, click, touch, scroll or pointer move in any of this browser's console tabs, an
// online agent is set away; the first sign of life sets them online again. An away
// chosen by hand is left alone. The period is 15 minutes unless this browser keeps
// another in localStorage (`hub.console.idleMs`, milliseconds; 0 turns it off).

const ACTIVE_KEY = 'hub.console.active'; // the last sign of life in any tab (ms)
const AUTO_KEY = 'hub.console.autoAway'; // the agent some tab set away automatically
export const IDLE_MS = 15 * 60 * 1000;

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // storage off: this tab alone decides
  }
}

/** The idle period this browser uses (ms; 0: never away by itself). */
export function idlePeriod() {
  const v = Number(stored('hub.console.idleMs'));
  return stored('hub.console.idleMs') !== null && Number.isFinite(v) && v >= 0 ? v : IDLE_MS;
}

/**
 * me() → {id, presence} | null; setPresence(status) → bool (sent); onChange(auto): the
 * automatic away began (true) or ended (false). Returns stop().
 */
export function watchIdle({ me, setPresence, onChange }) {
  const idleMs = idlePeriod();
  if (!idleMs) return () => {};
  let last = Date.now();
  let shared = 0; // when `last` was last written for the other tabs
  const active = () => {
    const now = Date.now();
    last = now;
    if (now - shared > Math.min(10000, idleMs / 4)) {
      shared = now;
      store(ACTIVE_KEY, String(now));
    }
    const m = me();
    // back: an away this browser set by itself ends (an away chosen by hand stays)
    if (m && m.presence === 'away' && stored(AUTO_KEY) === m.id && setPresence('online')) {
      store(AUTO_KEY, null);
      onChange(false);
    }
  };
  const events = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart', 'focus'];
  for (const e of events) window.addEventListener(e, active, { passive: true, capture: true });
  const check = () => {
    const m = me();
    if (!m || m.presence !== 'online') return;
    const latest = Math.max(last, Number(stored(ACTIVE_KEY)) || 0);
    if (Date.now() - latest >= idleMs && setPresence('away')) {
      store(AUTO_KEY, m.id);
      onChange(true);
    }
  };
  const timer = setInterval(check, Math.max(250, Math.min(30000, idleMs / 4)));
  return () => {
    clearInterval(timer);
    for (const e of events) window.removeEventListener(e, active, { capture: true });
  };
}

/** Whether this browser set `agentId` away by itself (the top bar says "idle"). */
export function autoAway(agentId) {
  return !!agentId && stored(AUTO_KEY) === agentId;
}

/** The agent chose a presence by hand: it is theirs, not the idle watch's. */
export function chosenByHand() {
  store(AUTO_KEY, null);
}
