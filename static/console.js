// The agent console: folders, conversation lists, the conversation page, live updates.
// Plain ES modules, no build step. All text from people is rendered as text nodes.

import { h, fill, icon, avatar, setupPicker } from './console/dom.js';
import { makeApi, politeMessage, ApiError } from './console/api.js';
import { LiveSocket } from './console/live.js';
import { Typing } from './console/typing.js';
import { watchIdle, autoAway, chosenByHand } from './console/idle.js';
import { transcriptText, transcriptName, download } from './console/transcript.js';
import { setupShortcuts, SHORTCUTS } from './console/keys.js';
import { mountAssistants } from './console/assistants.js';
import { mountAgents } from './console/agents.js';
import { mountStats } from './console/stats.js';
import { queryWords, foundText, marked } from './console/search.js';
import { mountSavedReplies, setupSavedPicker } from './console/saved.js';
import {
  STATUS_LABEL, FOLDERS, CONV_STATES, ROLE_LABEL,
  visitorName, fmtTime, fmtAgo, fmtLeft, describeEvent, stars, pageLabel,
} from './console/words.js';

const TOKEN_KEY = 'hub.console.token';
const $ = (id) => document.getElementById(id);

const ORDER_KEY = 'hub.console.order';
const CONV_ORDER_KEY = 'hub.console.convOrder';
const CONV_OWNER_KEY = 'hub.console.convOwner';
const HOLDS_KEY = 'hub.console.holds.'; // + agent id: my messages on hold when this browser last saw them

/** A value kept in localStorage, or null (storage may be off). */
function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

const S = {
  token: null,
  meId: null,
  agents: new Map(),
  assistants: new Map(), // the bots' names (GET /api/assistants), by assistant id
  counts: {},
  // how many conversations each list holds (the hub's `counts` on its conversation
  // lists, an extension); read again after an event that moves a conversation
  convCounts: {},
  convCountsDirty: true,
  // comments that @mention me not seen yet (the hub's GET /api/mentions, an extension)
  mentionsUnread: 0,
  // the conversations of the inbox rows shown (the hub's `conversations=true`)
  convInfo: new Map(),
  route: { kind: 'inbox', key: 'pending', convId: null, msgId: null },
  list: { sig: '', items: [], loading: false, error: null, limit: 50, more: false },
  conv: null, // {id, conversation, items: [], byKey: Map}
  convError: null,
  convRetry: false, // whether loading the conversation again may help (not a 404)
  composerMode: 'reply',
  convTab: 'timeline', // the conversation pane shows the 'timeline', the 'activities' or the 'customer'
  activities: null, // {convId, items: [Event] newest first, loading, error}
  customer: null, // {convId, contactId, contact, conversations (newest first, with previews), loading, error}
  drafts: new Map(),
  sends: new Map(), // conversation id → the reply being sent {text, clientId, busy, delivered}
  recent: [], // recent live events, replayed over fresh HTTP snapshots
  convLoads: new Set(), // {id, events}: a conversation's live events during its load, kept whole
  owners: new Map(), // conversation id → owner (agent id or null), as far as this console knows
  contacts: new Map(), // contact id → {name, email, channel}, from the conversations opened
  unfolded: new Set(), // keys of the long bubbles shown whole
  assignees: new Map(), // message id → its assignee as last seen (lists, timelines, events), for notifications
  senders: new Map(), // message id → its contact id, as far as this console has seen it
  conn: 'connecting',
  // inbox folders newest first (PROTOCOL §6.3) or oldest first (a queue worked first
  // come, first served); kept in this browser
  order: stored(ORDER_KEY) === 'oldest' ? 'oldest' : 'newest',
  // conversation lists: by their latest message, reply or comment (the rows read), or as
  // the hub lists them, newest opened first (PROTOCOL §6.2)
  convOrder: stored(CONV_ORDER_KEY) === 'opened' ? 'opened' : 'activity',
  // whose conversations a list shows: everyone's, mine (I own them), or nobody's
  convOwner: ['mine', 'none'].includes(stored(CONV_OWNER_KEY)) ? stored(CONV_OWNER_KEY) : 'all',
};

const api = makeApi(() => S.token);
let live = null;

// ---------------------------------------------------------------- small helpers

function uid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Calls `fn` once calls have paused for `ms`, and at the latest `maxMs` after the
 * first call of a burst (a busy team's events never pause: lists still refresh).
 */
function debounce(fn, ms, maxMs = Infinity) {
  let t = null;
  let since = 0;
  return (...a) => {
    clearTimeout(t);
    if (!since) since = Date.now();
    const wait = Math.max(0, Math.min(ms, since + maxMs - Date.now()));
    t = setTimeout(() => {
      since = 0;
      fn(...a);
    }, wait);
  };
}

function me() {
  return S.agents.get(S.meId) || null;
}

function isAdmin() {
  const m = me();
  return !!m && m.role === 'admin';
}

function isSupervisor() {
  const m = me();
  return !!m && (m.role === 'supervisor' || m.role === 'admin');
}

/** A display name for an agent id, `bot:ID` or `system`. */
function who(id) {
  if (!id) return 'Nobody';
  if (id === 'system') return 'The hub';
  if (String(id).startsWith('bot:')) return botName(id) || 'The bot';
  if (id === S.meId) return 'You';
  const a = S.agents.get(id);
  return a ? a.name : 'An agent';
}

/** An assistant's name for `bot:ID` (or a bot reply's author id), marked as a bot; null when unknown. */
function botName(id) {
  const a = S.assistants.get(String(id).replace(/^bot:/, ''));
  return a ? `${a.name} (bot)` : null;
}

function nameOf(id) {
  if (id && String(id).startsWith('bot:')) return botName(id) || 'the bot';
  const a = S.agents.get(id);
  return a ? a.name : who(id);
}

const keyedToasts = new Map(); // key → a toast that an event may make obsolete (a help request handled)

/** Removes the toast kept under `key`, if any. */
function dropToast(key) {
  const el = keyedToasts.get(key);
  if (el) el.remove();
  keyedToasts.delete(key);
}

// Notices stand in the order of what they tell, whenever they are shown (a notice that
// waits for a customer's name must not overtake a later one, nor be the one that makes
// way past three).
let toastOrder = 0;

function toast(text, kind = 'info', action = null, key = null, order = ++toastOrder) {
  if (key) dropToast(key);
  // the conversation a notification leads to: opening it dismisses the notice
  const conv = action && action.href && /\/c\/([^/]+)/.exec(action.href);
  const data = {};
  if (key) data.key = key;
  if (conv) data.conv = decodeURIComponent(conv[1]);
  data.order = order;
  const el = h('div', { class: ['toast', kind], role: kind === 'error' ? 'alert' : 'status', dataset: data },
    h('span', { class: 'toast-text', text, title: text }),
    action && action.href ? h('a', { class: 'toast-action', href: action.href, text: action.label, on: { click: () => el.remove() } }) : null,
    action && action.onClick ? h('button', { class: 'toast-action', text: action.label, on: { click: () => { el.remove(); action.onClick(); } } }) : null,
    h('button', { class: 'toast-close', 'aria-label': 'Dismiss', on: { click: () => el.remove() } }, icon('x')));
  const later = [...$('toasts').querySelectorAll('.toast')].find((t) => Number(t.dataset.order) > order);
  $('toasts').insertBefore(el, later || null);
  if (key) keyedToasts.set(key, el);
  if (action && action.href) {
    // A notification with somewhere to go (a mention, a help request, a customer
    // writing back) stays until it is opened or dismissed: an agent away from the
    // screen for a minute must still find it. The three latest are kept (a pile of
    // them covered half the list), with "Dismiss all" over two or more.
    el.classList.add('sticky');
    const sticky = $('toasts').querySelectorAll('.toast.sticky');
    for (let i = 0; i < sticky.length - 3; i++) sticky[i].remove();
    return;
  }
  setTimeout(() => el.remove(), kind === 'error' || action ? 8000 : 5000);
}

/**
 * Keeps the toasts' companions right as toasts come and go: "Dismiss all" over two or
 * more notices, and the list pane's foot (its "Load older") lifted above them.
 */
function watchToasts() {
  const box = $('toasts');
  const clear = h('button', { class: 'toasts-clear', type: 'button', on: { click: () => {
    for (const el of box.querySelectorAll('.toast.sticky')) {
      if (el.dataset.key) keyedToasts.delete(el.dataset.key);
      el.remove();
    }
  } } });
  const update = () => {
    const n = box.querySelectorAll('.toast.sticky').length;
    if (n >= 2) {
      clear.textContent = `Dismiss all (${n})`;
      if (box.firstElementChild !== clear) box.prepend(clear);
    } else if (clear.parentNode) {
      clear.remove();
    }
    const height = box.childElementCount ? box.getBoundingClientRect().height + 16 : 0;
    document.documentElement.style.setProperty('--toasts-h', `${Math.round(height)}px`);
  };
  new MutationObserver(update).observe(box, { childList: true });
  window.addEventListener('resize', update);
}

function showError(err) {
  if (err instanceof ApiError && err.code === 'unauthorized') {
    signOut('Your session is no longer valid. Please sign in again.');
    return;
  }
  toast(politeMessage(err), 'error');
}

// ---------------------------------------------------------------- routing

// the screens that replace the list and conversation panes (Stats and Saved replies are
// for every agent)
const ADMIN_PAGES = ['assistants', 'agents', 'stats', 'saved'];
const isAdminPage = (kind) => ADMIN_PAGES.includes(kind);
let adminView = null; // the mounted admin screen ({reload, presence?})

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const r = { kind: 'inbox', key: 'pending', convId: null, msgId: null };
  if (ADMIN_PAGES.includes(parts[0]) && !parts[2]) return { ...r, kind: parts[0], key: 'all' };
  if (parts[0] === 'conversations' && CONV_STATES.some(([k]) => k === parts[1])) {
    r.kind = 'conversations';
    r.key = parts[1];
  } else if (parts[0] === 'mentions') {
    r.kind = 'mentions';
    r.key = 'all';
  } else if (parts[0] === 'search' && queryWords(parts[1]).length) {
    r.kind = 'search';
    r.key = parts[1];
  } else if (parts[0] === 'inbox' && FOLDERS.some(([k]) => k === parts[1])) {
    r.key = parts[1];
  }
  if (parts[2] === 'c' && parts[3]) r.convId = parts[3];
  if (parts[4] === 'm' && parts[5]) r.msgId = parts[5];
  return r;
}

function hashFor(kind, key, convId = null, msgId = null) {
  let s = `#/${kind}/${encodeURIComponent(key)}`;
  if (convId) s += `/c/${encodeURIComponent(convId)}`;
  if (convId && msgId) s += `/m/${encodeURIComponent(msgId)}`;
  return s;
}

function onRoute() {
  const prev = S.route;
  S.route = parseHash();
  document.body.classList.toggle('has-conv', !!S.route.convId);
  document.body.classList.remove('nav-open');
  if (showAdminPage(prev)) return;
  if (prev.kind !== S.route.kind || prev.key !== S.route.key || !S.list.sig) {
    if (S.route.kind === 'inbox' && S.route.key === 'pending') loadAutomation();
    S.list = { sig: '', items: [], loading: true, error: null, limit: 50, more: false };
    renderList();
    refreshLists();
  } else {
    renderList();
  }
  renderSidebar();
  if (S.route.kind === 'search' && document.activeElement !== $('search-input')) $('search-input').value = S.route.key;
  // another conversation opens on its timeline, not on the tab the last one was left on
  if (S.route.convId !== prev.convId) {
    S.convTab = 'timeline';
    // ... and its composer on Reply: a note meant for the last one must not take an
    // answer meant for this customer (unless only a comment is drafted here)
    const d = S.route.convId && S.drafts.get(S.route.convId);
    S.composerMode = d && d.comment && d.comment.trim() && !(d.reply && d.reply.trim()) ? 'comment' : 'reply';
  }
  if (S.route.convId !== prev.convId || !S.conv) openConversation(S.route.convId);
  else {
    if (S.route.msgId) focusMessage(S.route.msgId);
    if (S.conv && focusConvOnLoad === S.conv.id) focusIntoConv();
  }
}

/** The admin screens (#/assistants, #/agents): they replace the list and conversation panes. */
function showAdminPage(prev) {
  const on = isAdminPage(S.route.kind);
  document.body.classList.toggle('admin-page', on);
  $('admin-pane').hidden = !on;
  if (!on) {
    if (isAdminPage(prev.kind)) S.list.sig = '';
    if (adminView && adminView.stop) adminView.stop();
    adminView = null;
    fill($('admin-pane'));
    return false;
  }
  if (prev.kind !== S.route.kind || !$('admin-pane').firstChild) {
    if (adminView && adminView.stop) adminView.stop();
    if (S.route.kind === 'stats') {
      adminView = mountStats($('admin-pane'), { api, onError: showError });
    } else if (S.route.kind === 'saved') {
      adminView = mountSavedReplies($('admin-pane'), { api, canEdit: isSupervisor(), confirm: confirmDialog, onError: showError });
    } else if (S.route.kind === 'assistants') {
      adminView = mountAssistants($('admin-pane'), {
        api,
        confirm: confirmDialog,
        onChange: (items) => { S.assistants = new Map(items.map((a) => [a.id, a])); },
        onError: showError,
      });
    } else {
      adminView = mountAgents($('admin-pane'), {
        api,
        confirm: confirmDialog,
        meId: () => S.meId,
        onChange: (items) => {
          setAgents(items);
          renderTeam();
        },
        onError: showError,
      });
    }
  }
  openConversation(null);
  renderSidebar();
  return true;
}

// ---------------------------------------------------------------- sign in / out

function showLogin(message = null) {
  $('app').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('login-token').focus();
}

async function signIn(token, { remembered = false } = {}) {
  const btn = $('login-submit');
  btn.disabled = true;
  S.token = token;
  try {
    const data = await api('GET', '/api/agents');
    setAgents(data.items);
  } catch (e) {
    S.token = null;
    btn.disabled = false;
    if (remembered) sessionStorage.removeItem(TOKEN_KEY);
    if (e instanceof ApiError && e.code === 'unauthorized') showLogin('This token was not recognised. Please check it and try again.');
    else if (e instanceof ApiError && e.code === 'forbidden') showLogin('This is not an agent token. Please use the token of your agent account.');
    else showLogin(politeMessage(e));
    return;
  }
  btn.disabled = false;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login').hidden = true;
  $('app').hidden = false;
  $('login-token').value = '';
  startLive();
  onRoute();
}

function signOut(message = null) {
  if (live) live.stop();
  live = null;
  stopIdle();
  S.token = null;
  S.meId = null;
  S.conv = null;
  // Drafts and replies being sent were this agent's: the next one to sign in on this
  // tab must not find (and send) them.
  S.drafts.clear();
  S.sends.clear();
  typing.clear();
  composer = null;
  S.list = { sig: '', items: [], loading: false, error: null, limit: 50, more: false };
  sessionStorage.removeItem(TOKEN_KEY);
  try {
    sessionStorage.removeItem(DRAFTS_KEY);
  } catch {
    // nothing kept
  }
  showLogin(message);
}

// ---------------------------------------------------------------- live

// Who types where (the hub's typing signals): the customer in the open conversation,
// colleagues writing a reply or a comment there; and what this agent types, told.
const typing = new Typing({
  send: (f) => (live ? live.send(f) : false),
  onChange: () => {
    renderTyping();
    markTypingRows();
  },
});

/** The list's rows say who types there: "typing…" beside a customer who is, "Sue Chen
 * replying…" on a conversation a colleague answers. Drawn over the rows as they are. */
function markTypingRows() {
  const { customers, replying } = typing.typists(S.meId);
  for (const row of document.querySelectorAll('#list a.row[data-contact-id]')) {
    const agents = replying.get(row.dataset.conversationId) || [];
    const text = customers.has(row.dataset.contactId) ? 'typing…'
      : agents.length ? `${agents.map(nameOf).join(', ')} replying…` : '';
    let tag = row.querySelector('.row-typing');
    if (!text) {
      if (tag) tag.remove();
      continue;
    }
    if (!tag) {
      tag = h('span', { class: 'row-typing' });
      row.querySelector('.row-who')?.after(tag);
    }
    tag.textContent = text;
    tag.classList.toggle('agent', !customers.has(row.dataset.contactId));
  }
}

// Away by itself after a while without activity (console/idle.js), back at the first key.
let stopIdle = () => {};

function startLive() {
  stopIdle();
  stopIdle = watchIdle({
    me,
    setPresence: (status) => (live ? live.send({ type: 'presence', status }) : false),
    onChange: () => renderMe(),
  });
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  live = new LiveSocket({
    url: `${proto}//${location.host}/ws/agent`,
    token: () => S.token,
    onStatus: (s) => {
      S.conn = s;
      renderConn();
    },
    onWelcome: (w, { fresh }) => {
      const first = S.meId !== w.agent_id;
      S.meId = w.agent_id;
      if (first) restoreDrafts();
      if (fresh) reloadAll();
      else {
        refreshLists();
        // a conversation that failed to load while the hub was out of reach
        if (S.route.convId && S.convError && S.convRetry) openConversation(S.route.convId);
      }
      renderMe();
      renderSidebar();
    },
    onEvent,
    onFrame: (f) => {
      if (f.type === 'typing') typing.hear(f);
      else if (f.type === 'automation' && f.settings) applyAutomation(f.settings);
      else if (f.type === 'agent' && f.agent) applyAgent(f.agent);
    },
    onUnauthorized: () => signOut('Your session is no longer valid. Please sign in again.'),
    onError: (f) => toast(politeMessage(new ApiError(400, f.code, f.message)), 'error'),
  });
  live.start();
}

async function reloadAll() {
  S.owners.clear();
  S.assignees.clear();
  countMentions();
  await Promise.all([loadAgents(), loadAssistants(), loadMyMessages()]);
  refreshLists();
  if (S.route.convId) loadConversation(S.route.convId, { keepScroll: true });
}

let agentsAt = 0; // when the team was last read

/**
 * The team read again when it is older than `maxAgeMs`: before a teammate is chosen
 * (an agent created since this console started signs in nowhere, and §7 has no event
 * for it), as a mention begins, and once a minute.
 */
async function refreshAgentsIfStale(maxAgeMs = 1000) {
  if (!S.token || Date.now() - agentsAt < maxAgeMs) return false;
  const before = S.agents.size;
  await loadAgents();
  return S.agents.size !== before;
}

async function loadAgents() {
  const seq0 = live ? live.lastSeq : null;
  try {
    // with who has what (`workload`, an extension): the team list shows it
    const data = await api('GET', '/api/agents?workload=true');
    agentsAt = Date.now();
    setAgents(data.items);
    for (const ev of S.recent) if (ev.kind === 'presence.changed' && seq0 !== null && ev.seq > seq0) applyPresence(ev);
  } catch (e) {
    showError(e);
  }
  renderMe();
  renderTeam();
}

/**
 * Whose the messages are, from a snapshot (a list, a timeline): live events are newer, so
 * a message already known keeps what they said.
 */
function knowAssignees(messages) {
  for (const m of messages || []) {
    if (!m || !m.id) continue;
    if (!S.assignees.has(m.id)) S.assignees.set(m.id, m.assignee ?? null);
    if (m.contact_id) S.senders.set(m.id, m.contact_id);
  }
}

/** My messages (Mine, On hold), so that I am told when one is taken away from me. */
async function loadMyMessages() {
  try {
    const [mine, held] = await Promise.all([
      api('GET', '/api/inbox?folder=mine&limit=500'),
      api('GET', '/api/inbox?folder=on_hold&limit=500'),
    ]);
    knowAssignees([...mine.items, ...held.items]);
    holdsWhileAway(held.items);
  } catch {
    // only notifications depend on it
  }
}

/** My messages on hold, as far as this console knows (kept in the browser for the next start). */
let myHolds = new Map();

function rememberHolds() {
  try {
    localStorage.setItem(HOLDS_KEY + S.meId, JSON.stringify([...myHolds.values()]));
  } catch {
    // notices only
  }
}

/** Keeps `myHolds` from live events: a message put on hold by me, or leaving my hold. */
function trackHold(ev) {
  const d = ev.data || {};
  if (ev.kind !== 'message.status_changed' || !S.meId) return;
  if (d.to === 'on_hold' && d.assignee === S.meId) {
    myHolds.set(d.message_id, { id: d.message_id, conversation_id: ev.conversation_id });
  } else if (myHolds.has(d.message_id)) {
    myHolds.delete(d.message_id);
  } else {
    return;
  }
  rememberHolds();
}

/**
 * A hold of mine that ended while no console of mine was open went back to Pending
 * (§6.1: its agent was not present) with nobody to tell me: say so at the next start,
 * from the holds this browser saw last and where those messages are now.
 */
async function holdsWhileAway(current) {
  const me = S.meId;
  if (!me) return;
  let before = [];
  try {
    before = JSON.parse(localStorage.getItem(HOLDS_KEY + me) || '[]');
  } catch {
    before = [];
  }
  myHolds = new Map(current.map((m) => [m.id, { id: m.id, conversation_id: m.conversation_id }]));
  rememberHolds();
  const gone = (Array.isArray(before) ? before : []).filter((x) => x && x.id && x.conversation_id && !myHolds.has(x.id)).slice(0, 10);
  for (const x of gone) {
    try {
      const data = await api('GET', `/api/conversations/${encodeURIComponent(x.conversation_id)}`);
      if (S.meId !== me) return;
      if (data.contact && data.contact.id) S.contacts.set(data.contact.id, data.contact);
      const m = data.timeline.find((it) => it.type === 'message' && it.id === x.id);
      if (!m) continue;
      const whose = `${customerName(m.contact_id)}’s message`;
      const link = (key) => ({ href: hashFor('inbox', key, x.conversation_id, x.id), label: 'Open' });
      if (m.status === 'pending') {
        toast(`While you were away, your hold on ${whose} ended: it went back to Pending`, 'info', link('pending'));
      } else if (m.status === 'answered' && m.assignee && m.assignee !== me) {
        toast(`While you were away, ${nameOf(m.assignee)} answered ${whose} you had on hold`, 'info', link('answered'));
      } else if (m.assignee && m.assignee !== me && !String(m.assignee).startsWith('bot:')) {
        toast(`While you were away, ${whose} you had on hold went to ${nameOf(m.assignee)}`, 'info', link('all'));
      }
    } catch {
      // a notice only
    }
  }
}

const botsAsked = new Set();

/** The bots' names; without them (an error), bots are shown as "The bot". */
async function loadAssistants() {
  try {
    const data = await api('GET', '/api/assistants');
    S.assistants = new Map(data.items.map((a) => [a.id, a]));
  } catch {
    /* names only: keep the generic one */
  }
}

/** Loads the bots' names again when an event names a bot this console does not know (once per bot). */
function checkBots(ev) {
  const d = ev.data || {};
  const ids = [d.by, d.assignee, d.reply && d.reply.author && d.reply.author.kind === 'bot' && `bot:${d.reply.author.id}`];
  const unknown = ids.filter((id) => id && String(id).startsWith('bot:') && !botName(id) && !botsAsked.has(id));
  if (!unknown.length) return;
  for (const id of unknown) botsAsked.add(id);
  scheduleAssistants();
}

const scheduleAssistants = debounce(async () => {
  await loadAssistants();
  renderList();
  if (S.conv) renderConv();
}, 100);

function setAgents(items) {
  S.agents = new Map(items.map((a) => [a.id, a]));
}

function onEvent(ev) {
  typing.seen(ev);
  S.recent.push(ev);
  if (S.recent.length > 2000) S.recent.splice(0, 1000);
  // S.recent is trimmed: a conversation being loaded keeps its own events untrimmed
  for (const l of S.convLoads) if (ev.conversation_id === l.id) l.events.push(ev);
  if (ev.kind === 'presence.changed') {
    applyPresence(ev);
    return;
  }
  if (CONV_COUNT_EVENTS.has(ev.kind)) S.convCountsDirty = true;
  if (mentionsMe(ev)) {
    if (S.route.kind === 'mentions') scheduleRefresh();
    else {
      S.mentionsUnread += 1;
      renderSidebar();
    }
  }
  // a conversation list changes with its conversations' events only; a message, reply
  // or comment updates its row's preview in place (the counts are fetched again)
  if (S.route.kind === 'conversations' && !CONV_LIST_EVENTS.has(ev.kind)) {
    if (previewFrom(ev)) scheduleRowUpdate(ev.conversation_id);
    if (ev.kind !== 'comment.created') scheduleCounts();
  } else if (S.route.kind === 'mentions' || S.route.kind === 'search') {
    // the list changes with my mentions only (above), search results when searched
    // again; the sidebar's counts with the rest
    if (ev.kind !== 'comment.created') scheduleCounts();
  } else if (ev.kind !== 'comment.created') {
    scheduleRefresh();
  }
  if (mentionsUnknownAgent(ev)) scheduleAgents();
  checkBots(ev);
  if (S.conv && ev.conversation_id === S.conv.id) {
    applyToConv(ev);
    renderConv();
    // the Customer tab shows the latest page this conversation noted
    if (ev.kind === 'conversation.page') renderCustomer();
  }
  if (S.activities && ev.conversation_id === S.activities.convId) {
    addActivities([ev]);
    renderActivities();
  }
  if (concernsCustomer(ev)) scheduleCustomer();
  trackOwner(ev);
  trackHold(ev);
  notify(ev);
}

/** Keeps S.owners up to date from live events (an owner, once set, only changes by an event). */
function trackOwner(ev) {
  const d = ev.data || {};
  if (ev.kind === 'conversation.owner') S.owners.set(ev.conversation_id, d.owner ?? null);
  else if ((ev.kind === 'conversation.opened' || ev.kind === 'conversation.reopened') && d.conversation) {
    S.owners.set(ev.conversation_id, d.conversation.owner ?? null);
  }
}

const ownerAsks = new Map(); // conversation id → the pending GET of its owner

/** The owner of a conversation: known, or asked of the hub once. */
async function ownerOf(convId) {
  if (S.owners.has(convId)) return S.owners.get(convId);
  if (!ownerAsks.has(convId)) {
    ownerAsks.set(convId, api('GET', `/api/conversations/${encodeURIComponent(convId)}`)
      .then((data) => {
        if (!S.owners.has(convId)) S.owners.set(convId, data.conversation.owner ?? null);
        return S.owners.get(convId);
      })
      .catch(() => undefined)
      .finally(() => ownerAsks.delete(convId)));
  }
  return ownerAsks.get(convId);
}

/** A customer wrote back in a conversation I own and do not have open: tell me. */
async function notifyOwner(ev) {
  const m = (ev.data || {}).message;
  if (!m || !ev.conversation_id || !S.meId) return;
  const viewing = () => S.route.convId === ev.conversation_id;
  if (viewing()) return;
  const owner = await ownerOf(ev.conversation_id);
  if (owner !== S.meId || viewing() || !S.token) return;
  await ensureContacts([m.contact_id]);
  if (viewing() || !S.token) return;
  const kind = isAdminPage(S.route.kind) ? 'inbox' : S.route.kind;
  const key = isAdminPage(S.route.kind) ? 'pending' : S.route.key;
  toast(`${customerName(m.contact_id)} wrote back in your conversation: “${short(m.text)}”`, 'info',
    { href: hashFor(kind, key, ev.conversation_id, m.id), label: 'Open' });
}

/** A customer rated a conversation I own: tell me, with the stars and their words. */
async function notifyRating(ev, link, viewing) {
  const d = ev.data || {};
  if (!ev.conversation_id || !S.meId) return;
  if ((await ownerOf(ev.conversation_id)) !== S.meId || !S.token) return;
  toastNamed([d.contact_id], () => {
    const said = d.comment ? `: “${short(d.comment)}”` : '';
    return [`${customerName(d.contact_id)} rated your conversation ${stars(d.score)}${said}`, 'info', viewing ? null : { href: link, label: 'Open' }];
  });
}

/** Whether an event names an agent this console does not know yet (created since). */
function mentionsUnknownAgent(ev) {
  const d = ev.data || {};
  const ids = [d.by, d.assignee, d.owner, d.reply && d.reply.author && d.reply.author.id, d.comment && d.comment.author && d.comment.author.id];
  return ids.some((id) => id && id !== 'system' && !String(id).startsWith('bot:') && !S.agents.has(id));
}

const scheduleAgents = debounce(async () => {
  await loadAgents();
  renderList();
  if (S.conv) renderConv();
}, 100);

/** An admin changed the automation settings (the hub's `automation` signal). */
function applyAutomation(settings) {
  S.autoAssign = !!settings.auto_assign;
  renderListNote();
  if (adminView && adminView.automationChanged) adminView.automationChanged(settings);
}

/** An admin changed an agent's capacity or channels (the hub's `agent` signal). */
function applyAgent(agent) {
  const a = S.agents.get(agent.id);
  if (a) {
    a.capacity = agent.capacity;
    a.channels = agent.channels;
    renderTeam();
  } else {
    scheduleAgents();
  }
  if (adminView && adminView.agentChanged) adminView.agentChanged(agent);
}

function applyPresence(ev) {
  const { agent_id: id, presence } = ev.data || {};
  const a = S.agents.get(id);
  if (!a) {
    scheduleAgents();
    // the Agents screen loads its list again (an agent added elsewhere)
    if (adminView && adminView.presence) adminView.presence(id, presence);
    return;
  }
  const was = a.presence;
  a.presence = presence;
  renderTeam();
  if ((was === 'offline') !== (presence === 'offline')) {
    // "with Bob (offline)" comes and goes with Bob
    renderList();
    if (S.conv) renderConv();
  }
  if (adminView && adminView.presence) adminView.presence(id, presence);
  if (id === S.meId) renderMe();
}

function notify(ev) {
  const d = ev.data || {};
  const link = ev.conversation_id ? hashFor(S.route.kind, S.route.key, ev.conversation_id) : null;
  const viewing = S.conv && S.conv.id === ev.conversation_id;
  if (ev.kind === 'message.created') {
    if (d.message) {
      S.assignees.set(d.message.id, d.message.assignee ?? null);
      S.senders.set(d.message.id, d.message.contact_id);
    }
    notifyOwner(ev);
  } else if (ev.kind === 'conversation.owner') {
    if (d.owner === S.meId && d.by && d.by !== S.meId && d.by !== 'system' && !String(d.by).startsWith('bot:')) {
      const contact = contactOfConversation(ev.conversation_id);
      toastNamed([contact], () => [`${nameOf(d.by)} gave you ${contact ? `the conversation with ${customerName(contact)}` : 'a conversation'}`, 'info', viewing ? null : { href: link, label: 'Open' }]);
    }
  } else if (ev.kind === 'conversation.rated') {
    notifyRating(ev, link, viewing);
  } else if (ev.kind === 'comment.created') {
    const c = d.comment;
    if (c && c.author && c.author.id !== S.meId && (c.mentions || []).includes(S.meId)) {
      const contact = contactOfConversation(ev.conversation_id);
      toastNamed([contact], () => {
        const where = contact ? ` in ${customerName(contact)}’s conversation` : '';
        return [`${nameOf(c.author.id)} mentioned you${where}: “${short(c.text)}”`, 'info', viewing ? null : { href: link, label: 'Open' }];
      });
    }
  } else if (ev.kind === 'session.ended') {
    // an ended session no longer counts against its agent's capacity
    scheduleWorkload();
  } else if (ev.kind === 'message.status_changed') {
    scheduleWorkload();
    const prev = S.assignees.get(d.message_id);
    S.assignees.set(d.message_id, d.assignee ?? null);
    // a help request no longer waiting (taken, answered, …): its notice goes
    if (d.to !== 'help_requested') dropToast(`help:${d.message_id}`);
    // a message back from its hold that someone else then moved: that notice goes too
    if (!(d.from === 'on_hold' && d.by === 'system')) dropToast(`hold:${d.message_id}`);
    const open = (kind, key) => ({ href: hashFor(kind, key, ev.conversation_id, d.message_id), label: 'Open' });
    const here = S.route.convId === ev.conversation_id;
    // a notice names the customer: one not known yet is asked of the hub first, and a
    // notice whose message moved on meanwhile is not shown
    const still = () => S.assignees.get(d.message_id) === (d.assignee ?? null);
    const named = (build) => toastNamed([S.senders.get(d.message_id)], () => build(messageOwnerName(d.message_id)), still);
    if (d.to === 'help_answered' && d.assignee === S.meId && d.by !== S.meId) {
      toast(`${nameOf(d.by)} answered your help request`, 'success', viewing ? null : { href: link, label: 'Open' });
    } else if (d.to === 'help_requested' && isSupervisor() && d.by !== S.meId) {
      named((from) => [`${nameOf(d.by)} asked for help${from ? ` with ${from}’s message` : ''}${d.question ? `: “${short(d.question)}”` : ''}`, 'info', open('inbox', 'help_requests'), `help:${d.message_id}`]);
    } else if (d.to === 'assigned' && d.assignee === S.meId && d.from === 'pending' && d.by === 'system') {
      // automatic assignment (an extension): new work for me
      named((from) => [`New for you: ${from ? `a message from ${from}` : 'a message'} (assigned automatically)`, 'info', here ? null : open('inbox', 'mine')]);
    } else if (d.to === 'assigned' && d.assignee === S.meId && d.from === 'on_hold' && d.by === 'system') {
      named((from) => [`Hold over: ${from ? `the message from ${from}` : 'a message'} is back with you`, 'info', here ? null : open('inbox', 'mine'), `hold:${d.message_id}`]);
    } else if (d.to === 'assigned' && d.assignee === S.meId && d.by && d.by !== S.meId && d.by !== 'system' && !String(d.by).startsWith('bot:')) {
      named((from) => [`${nameOf(d.by)} assigned you ${from ? `a message from ${from}` : 'a message'}`, 'info', here ? null : open('inbox', 'mine')]);
    } else if (prev === S.meId && d.assignee !== S.meId && d.by !== S.meId && ['assigned', 'on_hold', 'help_answered'].includes(d.from)) {
      named((from) => {
        const what = from ? `the message from ${from}` : 'a message';
        const text = d.by === 'system'
          ? (d.from === 'on_hold' ? `Hold over: ${what} went back to Pending` : `While you were offline, ${what} went back to Pending`)
          : `${nameOf(d.by)} took ${what} away from you${d.to === 'pending' ? ': it is back in Pending' : ''}`;
        return [text, 'info', here ? null : open('inbox', d.to === 'pending' ? 'pending' : 'all')];
      });
    }
  }
}

const contactAsks = new Map(); // contact id → the pending read of it
const contactsUnknown = new Set(); // ids the hub answered without (not asked again)

/**
 * Reads the customers not known yet (`GET /api/contacts?ids=`), each once at a time; a
 * failed read is tried again the next time they are wanted.
 */
function ensureContacts(ids) {
  const want = [...new Set(ids)].filter((id) => id && !S.contacts.has(id) && !contactsUnknown.has(id));
  const missing = want.filter((id) => !contactAsks.has(id));
  if (missing.length && S.token) {
    const ask = api('GET', `/api/contacts?ids=${missing.map(encodeURIComponent).join(',')}`)
      .then((data) => {
        for (const c of data.items || []) S.contacts.set(c.id, c);
        for (const id of missing) if (!S.contacts.has(id)) contactsUnknown.add(id);
      })
      .catch(() => {})
      .finally(() => { for (const id of missing) contactAsks.delete(id); });
    for (const id of missing) contactAsks.set(id, ask);
  }
  return Promise.all(want.map((id) => contactAsks.get(id)));
}

/**
 * A notice that names customers: at once when they are known, else once the hub said who
 * they are (a "Visitor 0b5f" for a customer with a name was the notice of a conversation
 * this console had not opened yet), and only if `still()` holds then.
 */
function toastNamed(contactIds, build, still = () => true) {
  const order = ++toastOrder;
  const show = () => {
    const [text, kind = 'info', action = null, key = null] = build();
    toast(text, kind, action, key, order);
  };
  if (contactIds.every((id) => !id || S.contacts.has(id))) {
    show();
    return;
  }
  ensureContacts(contactIds).then(() => {
    if (S.token && still()) show();
  });
}

/** The customer of a conversation, as far as this console has seen it (or null). */
function contactOfConversation(convId) {
  if (S.conv && S.conv.id === convId) return S.conv.conversation.contact_id;
  for (const x of S.list.items || []) {
    if ((x.conversation_id || x.id) === convId && x.contact_id) return x.contact_id;
  }
  return null;
}

/** A text shortened for a notice: one line, 80 characters at most. */
function short(text) {
  const t = String(text || '').replace(/\s+/g, ' ').trim();
  return t.length > 80 ? `${t.slice(0, 79)}…` : t;
}

/** The customer of a message this console has seen (for notifications), or null. */
function messageOwnerName(id) {
  const contact = S.senders.get(id);
  return contact ? customerName(contact) : null;
}

// ---------------------------------------------------------------- lists and counts

let listReq = 0;
let listBusy = false;
let listDirty = false;
const scheduleRefresh = debounce(() => refreshLists(), 120, 600);

/** Events that change which conversations a list holds, or what their rows say beyond the preview. */
const CONV_LIST_EVENTS = new Set([
  'conversation.opened', 'conversation.reopened', 'conversation.closed', 'conversation.spam',
  'conversation.owner', 'conversation.bot', 'session.ended',
]);

/** Events that move a conversation from one list to another (or add one). */
const CONV_COUNT_EVENTS = new Set([
  'conversation.opened', 'conversation.reopened', 'conversation.closed', 'conversation.spam',
]);

/** The conversation lists' sizes, when an event may have changed them since they were read. */
async function convCountsIfDirty() {
  if (!S.convCountsDirty) return;
  S.convCountsDirty = false;
  try {
    const data = await api('GET', '/api/conversations?state=open&limit=1&counts=true');
    if (data.counts) S.convCounts = data.counts;
  } catch {
    S.convCountsDirty = true; // the next refresh tries again
  }
}

/** Only the sidebar's counts (a conversation list whose conversations did not change). */
const scheduleCounts = debounce(async () => {
  if (!S.token || isAdminPage(S.route.kind)) return;
  try {
    const [data] = await Promise.all([api('GET', '/api/inbox?folder=pending&limit=1'), convCountsIfDirty()]);
    S.counts = data.counts || {};
    renderSidebar();
  } catch {
    // the next event or refresh tries again
  }
}, 120, 600);

/**
 * A message, reply or comment of a conversation in the list shown: it becomes that
 * row's preview (the hub's `preview`, an extension). Returns whether a row changed.
 */
function previewFrom(ev, byId = null) {
  const d = ev.data || {};
  const item = d.message || d.reply || d.comment;
  if (!item || !['message.created', 'reply.created', 'comment.created'].includes(ev.kind)) return false;
  const c = byId ? byId.get(ev.conversation_id) : (S.list.items || []).find((x) => x.id === ev.conversation_id);
  if (!c || (c.preview && c.preview.seq >= ev.seq)) return false;
  const author = d.message ? { kind: 'contact', id: d.message.contact_id } : item.author;
  const chars = Array.from(String(item.text || '')); // characters, as the hub cuts them
  c.preview = {
    type: ev.kind.split('.')[0], id: item.id, author, text: chars.slice(0, 160).join(''), truncated: chars.length > 160, at: item.at, seq: ev.seq,
  };
  return true;
}

/** Previews from the recent live events over a list just read (which may predate some). */
function previewsFromRecent() {
  const byId = new Map((S.list.items || []).map((c) => [c.id, c]));
  for (const ev of S.recent) previewFrom(ev, byId);
}

/**
 * Redraws the rows whose preview changed, in place (and, ordered by activity, at the
 * top), at most five times a second: a busy hour sends hundreds of messages a second,
 * and the list of a thousand rows drawn whole for each (or laid out at every frame)
 * kept the page busy all the time.
 */
const changedRows = new Set();
let rowsFrame = 0;
function scheduleRowUpdate(convId) {
  changedRows.add(convId);
  if (rowsFrame) return;
  rowsFrame = setTimeout(() => {
    rowsFrame = 0;
    const ids = [...changedRows];
    changedRows.clear();
    const list = $('list');
    const byId = new Map((S.list.items || []).map((c) => [c.id, c]));
    for (const id of ids) {
      const c = byId.get(id);
      const old = c && list.querySelector(`.row[data-conversation-id="${CSS.escape(id)}"]`);
      if (!old || S.route.kind !== 'conversations') continue;
      const li = conversationRow(c);
      old.closest('li').replaceWith(li);
      if (S.convOrder === 'activity') {
        // newest activity first: the row goes above every row whose latest item is older
        let before = list.firstElementChild;
        while (before && before !== li && rowLast(byId, before) > ((c.preview && c.preview.at) || '')) before = before.nextElementSibling;
        if (before && before !== li) list.insertBefore(li, before);
      }
    }
    markTypingRows();
  }, 200);
}

/** The time of a list row's latest item. */
function rowLast(byId, li) {
  const c = byId.get(li.querySelector('.row')?.dataset.conversationId);
  return (c && ((c.preview && c.preview.at) || c.opened_at)) || '';
}

async function refreshLists() {
  if (!S.token) return;
  if (listBusy) {
    listDirty = true;
    return;
  }
  listBusy = true;
  listDirty = false;
  const mine = ++listReq;
  const { kind, key } = S.route;
  const sig = `${kind}:${key}`;
  const limit = Math.min(500, Math.max(50, S.list.sig === sig ? S.list.items.length : 50));
  try {
    if (isAdminPage(kind)) {
      // no list on the admin screens, but the sidebar's counts stay live (§6.3 counts)
      const [data] = await Promise.all([api('GET', '/api/inbox?folder=pending&limit=1'), convCountsIfDirty()]);
      if (mine === listReq && S.route.kind === kind) S.counts = data.counts || {};
    } else if (kind === 'mentions') {
      const want = Math.min(500, Math.max(50, S.list.sig === sig ? S.list.items.length : 50));
      const [data, inbox] = await Promise.all([
        api('GET', `/api/mentions?limit=${want}`),
        api('GET', '/api/inbox?folder=pending&limit=1'),
        convCountsIfDirty(),
      ]);
      if (mine === listReq && S.route.kind === kind) {
        S.counts = inbox.counts || {};
        S.list = { sig, items: data.items, loading: false, error: null, limit: want, more: data.next_before !== undefined, next: data.next_before };
        mentionsSeen(data.items);
      }
    } else if (kind === 'search') {
      const want = Math.min(500, Math.max(50, S.list.sig === sig ? S.list.items.length : 50));
      const [data, inbox] = await Promise.all([
        api('GET', `/api/search?q=${encodeURIComponent(key)}&limit=${want}`),
        api('GET', '/api/inbox?folder=pending&limit=1'),
        convCountsIfDirty(),
      ]);
      knowConversations(data.conversations);
      if (mine === listReq && S.route.kind === kind && S.route.key === key) {
        S.counts = inbox.counts || {};
        S.list = { sig, items: data.items, loading: false, error: null, limit: want, more: data.next_before !== undefined, next: data.next_before };
      }
    } else if (kind === 'inbox') {
      const [data] = await Promise.all([
        api('GET', `/api/inbox?folder=${encodeURIComponent(key)}&limit=${limit}&order=${S.order}&conversations=true`),
        convCountsIfDirty(),
      ]);
      knowAssignees(data.items);
      knowConversations(data.conversations);
      if (mine === listReq && S.route.kind === kind && S.route.key === key) {
        S.counts = data.counts || {};
        S.list = { sig, items: data.items, loading: false, error: null, limit, more: data.items.length >= limit };
      }
    } else {
      // as many as were shown (pages of "Load older" included), 1,000 at least
      const shown = S.list.sig === sig ? S.list.items.length : 0;
      const want = Math.min(5000, Math.max(1000, shown));
      S.convCountsDirty = false;
      const [convs, inbox] = await Promise.all([
        api('GET', `/api/conversations?state=${encodeURIComponent(key)}&limit=${want}&preview=true&counts=true`),
        api('GET', '/api/inbox?folder=pending&limit=1'),
      ]);
      if (mine === listReq && S.route.kind === kind && S.route.key === key) {
        S.counts = inbox.counts || {};
        if (convs.counts) S.convCounts = convs.counts;
        S.list = { sig, items: convs.items, loading: false, error: null, limit, more: convs.next_before !== undefined, next: convs.next_before };
        for (const c of convs.items) S.owners.set(c.id, c.owner ?? null);
        // a message written while this list was read may be newer than its preview
        previewsFromRecent();
      }
    }
  } catch (e) {
    if (e instanceof ApiError && e.code === 'unauthorized') {
      listBusy = false;
      showError(e);
      return;
    }
    if (S.route.kind === kind && S.route.key === key && !isAdminPage(kind)) {
      S.list = { ...S.list, sig, loading: false, error: politeMessage(e) };
    }
  }
  listBusy = false;
  renderSidebar();
  renderList();
  if (listDirty) refreshLists();
}

async function loadMore() {
  const { kind, key } = S.route;
  if (kind === 'conversations') return loadOlderConversations();
  if (kind === 'mentions') return loadOlderMentions();
  if (kind === 'search') return loadOlderResults();
  if (kind !== 'inbox' || !S.list.items.length) return;
  const last = S.list.items[S.list.items.length - 1].seq;
  const cursor = S.order === 'oldest' ? `order=oldest&after=${last}` : `before=${last}`;
  try {
    const data = await api('GET', `/api/inbox?folder=${encodeURIComponent(key)}&limit=50&${cursor}&conversations=true`);
    knowConversations(data.conversations);
    if (S.route.kind !== kind || S.route.key !== key) return;
    const seen = new Set(S.list.items.map((m) => m.id));
    S.list.items.push(...data.items.filter((m) => !seen.has(m.id)));
    S.list.more = data.items.length >= 50;
    renderList();
  } catch (e) {
    showError(e);
  }
}

/** The next page of my mentions. */
async function loadOlderMentions() {
  const sig = 'mentions:all';
  if (S.list.sig !== sig || S.list.next === undefined) return;
  try {
    const data = await api('GET', `/api/mentions?limit=50&before=${S.list.next}`);
    if (S.list.sig !== sig) return;
    const seen = new Set(S.list.items.map((c) => c.id));
    S.list.items.push(...data.items.filter((c) => !seen.has(c.id)));
    S.list.next = data.next_before;
    S.list.more = data.next_before !== undefined && data.items.length > 0;
    renderList();
  } catch (e) {
    showError(e);
  }
}

/** The next page of search results. */
async function loadOlderResults() {
  const sig = `search:${S.route.key}`;
  if (S.list.sig !== sig || S.list.next === undefined) return;
  try {
    const data = await api('GET', `/api/search?q=${encodeURIComponent(S.route.key)}&limit=50&before=${S.list.next}`);
    knowConversations(data.conversations);
    if (S.list.sig !== sig) return;
    const seen = new Set(S.list.items.map((e) => e.seq));
    S.list.items.push(...data.items.filter((e) => !seen.has(e.seq)));
    S.list.next = data.next_before;
    S.list.more = data.next_before !== undefined;
    renderList();
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- mentions

const MENTIONS_KEY = 'hub.console.mentionsSeen.';

/** A comment by someone else that @mentions me. */
function mentionsMe(ev) {
  const c = ev.kind === 'comment.created' && ev.data && ev.data.comment;
  return !!(c && S.meId && c.author && c.author.id !== S.meId && (c.mentions || []).includes(S.meId));
}

function mentionsSeenSeq() {
  return Number(localStorage.getItem(MENTIONS_KEY + S.meId)) || 0;
}

/** The mentions shown are seen: the sidebar's count goes. */
function mentionsSeen(items) {
  const top = items.reduce((m, c) => Math.max(m, c.seq || 0), mentionsSeenSeq());
  try { localStorage.setItem(MENTIONS_KEY + S.meId, String(top)); } catch { /* private mode */ }
  S.mentionsUnread = 0;
}

/**
 * How many mentions came since this browser last showed them (a mention made while I
 * was away is counted at my next start), from the newest 100.
 */
async function countMentions() {
  if (!S.meId || S.route.kind === 'mentions') return;
  try {
    const data = await api('GET', '/api/mentions?limit=100');
    const seen = mentionsSeenSeq();
    S.mentionsUnread = data.items.filter((c) => (c.seq || 0) > seen && c.author && c.author.id !== S.meId).length;
    renderSidebar();
  } catch {
    // the count stays as it was
  }
}

/** The next page of a conversation list (the hub's `next_before`, an extension). */
async function loadOlderConversations() {
  const { kind, key } = S.route;
  const sig = `${kind}:${key}`;
  if (S.list.sig !== sig || S.list.next === undefined) return;
  try {
    const data = await api('GET', `/api/conversations?state=${encodeURIComponent(key)}&limit=1000&before=${S.list.next}&preview=true`);
    if (S.list.sig !== sig) return;
    const seen = new Set(S.list.items.map((c) => c.id));
    S.list.items.push(...data.items.filter((c) => !seen.has(c.id)));
    for (const c of data.items) S.owners.set(c.id, c.owner ?? null);
    S.list.next = data.next_before;
    S.list.more = data.next_before !== undefined && data.items.length > 0;
    previewsFromRecent();
    renderList();
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- the conversation

let convReq = 0;
let focusConvOnLoad = null; // a conversation opened from the list with Enter: focus goes into it once loaded

/** The notices that lead to a conversation go once it is open: they have been seen to. */
function dropToastsOf(convId) {
  for (const el of $('toasts').querySelectorAll('.toast')) {
    if (el.dataset.conv === convId) {
      if (el.dataset.key) keyedToasts.delete(el.dataset.key);
      el.remove();
    }
  }
}

function openConversation(id) {
  saveDraft();
  if (id) dropToastsOf(id);
  S.conv = null;
  S.convError = null;
  if (!id) {
    renderConv();
    return;
  }
  buildConvShell();
  loadConversation(id);
}

async function loadConversation(id, { keepScroll = false } = {}) {
  const mine = ++convReq;
  // every event of this conversation that arrives while the snapshot is fetched is
  // replayed over it (older ones than the snapshot are ignored by applyToConv), however
  // much other traffic comes meanwhile
  const pending = { id, events: [] };
  S.convLoads.add(pending);
  try {
    const data = await api('GET', `/api/conversations/${encodeURIComponent(id)}`);
    S.convLoads.delete(pending);
    if (mine !== convReq || S.route.convId !== id) return;
    const conv = { id, conversation: data.conversation, items: [], byKey: new Map() };
    if (data.contact && data.contact.id) {
      const known = S.contacts.get(data.contact.id);
      S.contacts.set(data.contact.id, data.contact);
      // the list shows the name too
      if (!known || known.name !== data.contact.name) queueMicrotask(renderList);
    }
    for (const it of data.timeline) addItem(conv, it);
    knowAssignees(data.timeline.filter((it) => it.type === 'message'));
    S.conv = conv;
    S.owners.set(id, data.conversation.owner ?? null);
    S.convError = null;
    for (const ev of pending.events) applyToConv(ev);
    if (!$('conv-view') || $('conv-view').dataset.id !== id) buildConvShell();
    renderConv({ scroll: keepScroll ? 'keep' : 'bottom' });
    // the customer's name is known now: the activities say it too
    renderActivities();
    if (S.convTab === 'customer' && (!S.customer || !S.customer.contactId)) loadCustomer(id);
    if (S.route.msgId) focusMessage(S.route.msgId);
    if (focusConvOnLoad === id) focusIntoConv();
  } catch (e) {
    S.convLoads.delete(pending);
    if (mine !== convReq) return;
    if (e instanceof ApiError && e.code === 'unauthorized') return showError(e);
    S.convRetry = !(e instanceof ApiError && e.code === 'not_found');
    S.convError = S.convRetry ? politeMessage(e) : 'This conversation does not exist.';
    renderConv();
  }
}

/** Opened from the list with the keyboard: focus goes into the conversation (its composer). */
function focusIntoConv() {
  focusConvOnLoad = null;
  const box = composer && [composer.reply, composer.comment].find((x) => !x.hidden && !x.readOnly);
  const target = box || $('timeline');
  if (target) target.focus();
}

function itemKey(it) {
  return it.type === 'event' ? `e:${it.seq}` : `${it.type}:${it.id}`;
}

function addItem(conv, it) {
  const k = itemKey(it);
  const old = conv.byKey.get(k);
  if (old) {
    if ((it.seq || 0) > (old.seq || 0)) Object.assign(old, it);
    return old;
  }
  conv.byKey.set(k, it);
  conv.items.push(it);
  return it;
}

/** Applies a live event to the open conversation (idempotent). */
function applyToConv(ev) {
  const conv = S.conv;
  if (!conv) return;
  const d = ev.data || {};
  const c = conv.conversation;
  switch (ev.kind) {
    case 'message.created':
      addItem(conv, { ...d.message, type: 'message' });
      return;
    case 'reply.created': {
      const fresh = !conv.byKey.has(`reply:${d.reply && d.reply.id}`);
      addItem(conv, { ...d.reply, type: 'reply' });
      replyArrived(conv.id, d.reply);
      if (fresh) colleagueReplied(conv.id, d.reply);
      return;
    }
    case 'comment.created':
      addItem(conv, { ...d.comment, type: 'comment' });
      return;
    case 'message.status_changed': {
      const m = conv.byKey.get(`message:${d.message_id}`);
      if (m && (m.seq || 0) < ev.seq) {
        m.status = d.to;
        m.assignee = d.assignee ?? null;
        m.hold_until = d.to === 'on_hold' ? d.hold_until ?? null : null;
        if (d.to === 'help_requested') m.help = { requested_by: d.by, question: d.question ?? null, answer: null };
        else if (d.answer !== undefined && d.answer !== null && m.help) m.help = { ...m.help, answer: d.answer };
        m.seq = ev.seq;
      }
      break;
    }
    case 'conversation.reopened':
    case 'conversation.opened':
      if (d.conversation && (c.seq || 0) < ev.seq) conv.conversation = { ...d.conversation, seq: ev.seq };
      break;
    default:
      // a rating or a page is no field of the conversation: its seq stays (as the hub's)
      if ((c.seq || 0) < ev.seq && ev.kind !== 'conversation.rated' && ev.kind !== 'conversation.page') {
        if (ev.kind === 'conversation.closed') { c.state = 'closed'; c.bot_active = true; }
        if (ev.kind === 'session.ended') c.session = 'ended';
        if (ev.kind === 'conversation.spam') c.spam = !!d.spam;
        if (ev.kind === 'conversation.bot') c.bot_active = !!d.active;
        if (ev.kind === 'conversation.owner') c.owner = d.owner;
        c.seq = ev.seq;
      }
  }
  addItem(conv, { type: 'event', seq: ev.seq, kind: ev.kind, conversation_id: ev.conversation_id, at: ev.at, data: d });
}

/** A message's text for event sentences ('' when it is the conversation's only one). */
function messageText(id) {
  const m = S.conv && S.conv.byKey.get(`message:${id}`);
  if (!m) return null;
  return S.conv.items.filter((it) => it.type === 'message').length > 1 ? m.text : '';
}

/** The actions of §6.1 that apply to a message's status, each enabled or not for me. */
function messageActions(m) {
  const sup = isSupervisor();
  const mine = m.assignee === S.meId;
  const notMine = 'Only the assignee can do this';
  const out = [];
  const add = (action, label, enabled, why, extra = {}) => out.push({ action, label, enabled, why: enabled ? null : why, ...extra });
  switch (m.status) {
    case 'pending':
      add('assign', 'Assign to me', true, null, { primary: true });
      if (sup) add('assign-to', 'Assign to…', true);
      break;
    case 'help_requested':
      add('assign', 'Take help request', sup, 'Only supervisors can take help requests', { primary: true });
      if (sup) add('assign-to', 'Assign to…', true);
      break;
    case 'assigned':
    case 'on_hold':
    case 'help_answered': {
      if (m.status === 'assigned' && m.help && (m.help.answer === null || m.help.answer === undefined)) {
        add('answer-help', 'Answer help request', mine || sup, 'Only the assignee or a supervisor can answer', { primary: true });
      }
      if (m.status !== 'on_hold') add('hold', 'Hold', mine, notMine);
      add('request-help', 'Request help', mine, notMine);
      add('archive', 'Archive', mine, notMine);
      add('unassign', 'Unassign', mine || sup, 'Only the assignee or a supervisor can unassign');
      break;
    }
    case 'answered':
    case 'archived':
      add('reopen', 'Reopen', true);
      break;
    default:
  }
  return out;
}

async function runAction(m, action, body = {}) {
  try {
    const data = await api('POST', `/api/messages/${encodeURIComponent(m.id)}/${action}`, body);
    if (data && data.message && S.conv) {
      addItem(S.conv, { ...data.message, type: 'message' });
      renderConv();
    }
    scheduleRefresh();
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_transition') {
      toast(await raceLost(m, e), 'error');
      return false;
    }
    showError(e);
    if (e instanceof ApiError && e.code === 'not_found' && S.conv) loadConversation(S.conv.id, { keepScroll: true });
    return false;
  }
}

/**
 * An action lost a race (409 invalid_transition): the message is read again and the
 * sentence says what happened to it ("Bob Stone took this message."); the conversation
 * is shown as it now stands.
 */
async function raceLost(m, e) {
  let sentence = politeMessage(e);
  try {
    const data = await api('GET', `/api/conversations/${encodeURIComponent(m.conversation_id)}`);
    const now = (data.timeline || []).find((it) => it.type === 'message' && it.id === m.id);
    if (now) {
      S.assignees.set(now.id, now.assignee ?? null);
      sentence = `This is no longer possible: ${raceSentence(now)}`;
    }
  } catch {
    // the generic sentence
  }
  if (S.conv && S.conv.id === m.conversation_id) loadConversation(S.conv.id, { keepScroll: true });
  scheduleRefresh();
  return sentence;
}

/** What became of a message, in a sentence, from its current state. */
function raceSentence(m) {
  const mine = m.assignee === S.meId;
  const by = m.assignee ? nameOf(m.assignee) : null;
  switch (m.status) {
    case 'assigned':
      if (mine) return 'this message is already assigned to you.';
      return m.help ? `${by} took the help request on this message.` : `${by} took this message.`;
    case 'on_hold':
      return mine ? 'you put this message on hold.' : `${by} put this message on hold.`;
    case 'help_requested':
      return `${m.help && m.help.requested_by === S.meId ? 'you' : nameOf(m.help && m.help.requested_by)} asked for help on this message.`;
    case 'help_answered':
      return mine ? 'the help request was answered: the message is back with you.' : `the help request was answered: the message is with ${by}.`;
    case 'answered':
      return by ? `this message was answered by ${mine ? 'you' : by}.` : 'this message was answered.';
    case 'archived':
      return by ? `this message was archived by ${mine ? 'you' : by}.` : 'this message was archived.';
    case 'pending':
      return 'this message is back in Pending, with nobody.';
    default:
      return `this message is now ${STATUS_LABEL[m.status] || m.status}.`;
  }
}

function onMessageAction(m, a, btn) {
  switch (a.action) {
    case 'assign':
      return busy(btn, () => runAction(m, 'assign'));
    case 'assign-to':
      return refreshAgentsIfStale(0).then(() => openDialog({
        title: 'Assign this message',
        fields: [{ name: 'agent_id', label: 'Teammate', type: 'select', required: true, options: agentOptions() }],
        submit: 'Assign',
        onSubmit: (v) => runActionOrThrow(m, 'assign', { agent_id: v.agent_id }),
      }));
    case 'unassign':
      return busy(btn, () => runAction(m, 'unassign'));
    case 'archive':
      return busy(btn, () => runAction(m, 'archive'));
    case 'reopen':
      if (S.conv && S.conv.id === m.conversation_id && S.conv.conversation.session === 'ended') {
        return openDialog({
          title: 'Reopen this message?',
          description: 'The customer’s session has ended: they can no longer be answered in this conversation (replies are refused), and their next message starts a new conversation. The message goes back to Pending all the same.',
          submit: 'Reopen anyway',
          onSubmit: () => runActionOrThrow(m, 'reopen'),
        });
      }
      return busy(btn, () => runAction(m, 'reopen'));
    case 'request-help':
      return openDialog({
        title: 'Request help',
        description: 'Your question goes to the Help requests folder. The message leaves your queue until someone answers.',
        fields: [{ name: 'question', label: 'Your question', type: 'textarea', required: true, enterSends: true, placeholder: 'What do you need help with?  (Enter to send, Shift+Enter for a new line)' }],
        submit: 'Request help',
        onSubmit: (v) => runActionOrThrow(m, 'request-help', { question: v.question }),
      });
    case 'answer-help':
      return openDialog({
        title: 'Answer the help request',
        description: m.help && m.help.question ? `${nameOf(m.help.requested_by)} asked: “${m.help.question}”` : null,
        fields: [{ name: 'answer', label: 'Your answer', type: 'textarea', required: true, enterSends: true, placeholder: 'Your answer to your teammate  (Enter to send, Shift+Enter for a new line)' }],
        submit: 'Send answer',
        onSubmit: (v) => runActionOrThrow(m, 'answer-help', { answer: v.answer }),
      });
    default:
  }
  return null;
}

async function runActionOrThrow(m, action, body) {
  let data;
  try {
    data = await api('POST', `/api/messages/${encodeURIComponent(m.id)}/${action}`, body);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_transition') throw new ApiError(409, 'race_lost', await raceLost(m, e));
    throw e;
  }
  if (data && data.message && S.conv) {
    addItem(S.conv, { ...data.message, type: 'message' });
    renderConv();
  }
  scheduleRefresh();
}

function hold(m, spec, btn) {
  if (spec === 'until') {
    const min = new Date(Date.now() + 60000);
    const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    return openDialog({
      title: 'Put on hold until…',
      description: 'When the time comes, the message comes back to you (or to Pending if you are offline).',
      fields: [{ name: 'until', label: 'Until', type: 'datetime-local', required: true, min: local(min), value: local(new Date(Date.now() + 3600000 * 24)) }],
      submit: 'Put on hold',
      onSubmit: (v) => {
        const d = new Date(v.until);
        if (Number.isNaN(d.getTime()) || d.getTime() <= Date.now()) throw new ApiError(400, 'invalid', 'choose a time in the future');
        return runActionOrThrow(m, 'hold', { until: d.toISOString() });
      },
    });
  }
  // until further notice: neither for_seconds nor until (§6.1: hold_until null)
  if (spec === 'none') return busy(btn, () => runAction(m, 'hold', {}));
  return busy(btn, () => runAction(m, 'hold', { for_seconds: spec }));
}

async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try {
    return await fn();
  } finally {
    if (btn && btn.isConnected) btn.disabled = false;
  }
}

/** The team for a select, present first; nobody is chosen in advance. */
function agentOptions(except = null) {
  return [{ value: '', label: 'Choose a teammate…' }, ...[...S.agents.values()]
    .filter((a) => a.id !== except)
    .sort((a, b) => presenceRank(a) - presenceRank(b) || a.name.localeCompare(b.name))
    .map((a) => ({ value: a.id, label: `${a.name}${a.id === S.meId ? ' (you)' : ''} — ${a.presence}${loadLabel(a)}` }))];
}

/** ", 3 assigned" (", 2 of 5 conversations" with a capacity) for a teammate in a select. */
function loadLabel(a) {
  const w = a.workload;
  if (!w) return '';
  const cap = capacityOf(a);
  return cap ? `, ${w.conversations ?? w.assigned} of ${cap} conversations` : `, ${w.assigned} assigned`;
}

function presenceRank(a) {
  return { online: 0, away: 1 }[a.presence] ?? 2;
}

// conversation-level actions

/** The conversation's customer messages still waiting (§6.2: close archives them). */
function waitingMessages() {
  return S.conv.items.filter((it) => it.type === 'message' && WAITING.includes(it.status)).length;
}
const WAITING = ['pending', 'assigned', 'on_hold', 'help_requested', 'help_answered'];

/** Downloads the open conversation as text: what the customer saw, or everything. */
function downloadTranscript() {
  openDialog({
    title: 'Download the transcript',
    description: 'A text file of this conversation, times in UTC. Internal comments are never in what the customer saw.',
    fields: [{
      name: 'what',
      label: 'What it holds',
      type: 'select',
      options: [
        { value: 'customer', label: 'What the customer saw: their messages and the replies' },
        { value: 'full', label: 'Everything: internal comments and events too' },
      ],
    }],
    submit: 'Download',
    onSubmit: async (v) => {
      const conv = S.conv;
      if (!conv) return;
      // names as they are, never "You": the file outlives this console
      const c = conv.conversation;
      const contact = S.contacts.get(c.contact_id);
      const text = transcriptText(conv, v.what === 'full', {
        customer: customerName,
        agent: nameOf,
        bot: (id) => botName(id) || 'Assistant',
        contactLine: (id) => (contact && contact.email ? `${customerName(id)} <${contact.email}>` : customerName(id)),
        event: (ev) => describeEvent(ev, (id) => (id === S.meId ? nameOf(id) : who(id)), messageText, customerName),
      });
      download(transcriptName(customerName(c.contact_id), c.opened_at), text);
    },
  });
}

function closeConversation() {
  const id = S.conv.id;
  const ended = S.conv.conversation.session === 'ended';
  const waiting = waitingMessages();
  const archived = waiting
    ? ` ${waiting} waiting customer message${waiting > 1 ? 's' : ''} (pending, assigned, on hold or in a help request) will be archived.`
    : ' No customer message is waiting: nothing is archived.';
  // an ended session takes no message again: the customer's next one starts a new conversation
  const after = ended
    ? 'The customer’s session has ended: their next message starts a new conversation.'
    : 'The bot is turned back on, and a new customer message reopens it.';
  openDialog({
    title: 'Close the conversation',
    description: `Its open customer messages are archived.${archived} ${after}`,
    fields: [{ name: 'notes', label: 'Closing notes (optional)', type: 'textarea', placeholder: 'e.g. refund issued, order #1234' }],
    submit: 'Close conversation',
    onSubmit: async (v) => {
      const body = v.notes.trim() ? { notes: v.notes.trim() } : {};
      const data = await api('POST', `/api/conversations/${encodeURIComponent(id)}/close`, body);
      patchConversation(id, data.conversation);
    },
  });
}

function endSession() {
  const id = S.conv.id;
  // Messages still waiting keep their status (seed 002): say so before they are stranded.
  const waiting = waitingMessages();
  const warning = waiting
    ? ` ${waiting} customer message${waiting > 1 ? 's are' : ' is'} still waiting for an answer: ${waiting > 1 ? 'they' : 'it'} can no longer be answered once the session has ended (reply first, or close the conversation to archive ${waiting > 1 ? 'them' : 'it'}).`
    : '';
  openDialog({
    title: 'End the messaging session',
    description: `The customer is told the conversation has ended and cannot write in it any more; their next message starts a new conversation. Replies are turned off; internal comments stay possible.${warning}`,
    fields: [{ name: 'reason', label: 'Reason (optional; sent to the customer’s widget with the end)', type: 'text', placeholder: 'e.g. resolved' }],
    submit: 'End session',
    danger: true,
    onSubmit: async (v) => {
      const body = v.reason.trim() ? { reason: v.reason.trim() } : {};
      const data = await api('POST', `/api/conversations/${encodeURIComponent(id)}/end-session`, body);
      patchConversation(id, data.conversation);
    },
  });
}

/**
 * What I may do with the conversation's ownership (the hub's `owner` route, an
 * extension): take one nobody owns, hand mine over, or (a supervisor) give any to anyone.
 */
function ownerAction(c) {
  if (isSupervisor()) return c.owner ? 'Reassign…' : 'Assign…';
  if (!c.owner) return 'Take conversation';
  return c.owner === S.meId ? 'Hand over…' : null;
}

async function changeOwner(btn) {
  const id = S.conv.id;
  const c = S.conv.conversation;
  const give = async (agentId) => {
    const data = await api('POST', `/api/conversations/${encodeURIComponent(id)}/owner`, agentId ? { agent_id: agentId } : {});
    patchConversation(id, data.conversation);
    S.owners.set(id, data.conversation.owner ?? null);
    const to = data.conversation.owner;
    toast(to === S.meId ? 'The conversation is yours.' : `The conversation is now ${nameOf(to)}’s.`, 'success');
  };
  if (!isSupervisor() && !c.owner) {
    await busy(btn, async () => {
      try {
        await give(null);
      } catch (e) {
        showError(e);
        loadConversation(id, { keepScroll: true });
      }
    });
    return;
  }
  await refreshAgentsIfStale(0);
  openDialog({
    title: c.owner ? 'Give this conversation to a teammate' : 'Assign this conversation',
    description: `${c.owner ? `${nameOf(c.owner)} owns it now. ` : ''}The owner is told when the customer writes back, and is shown on the conversation. Its messages keep their assignees.`,
    fields: [{ name: 'agent_id', label: 'Teammate', type: 'select', required: true, options: agentOptions(c.owner) }],
    submit: c.owner ? 'Give' : 'Assign',
    onSubmit: (v) => give(v.agent_id),
  });
}

async function toggleSpam(btn) {
  const id = S.conv.id;
  const spam = !S.conv.conversation.spam;
  await busy(btn, () => setSpam(id, spam, true));
}

/** Moves a conversation to or from Spam; a move by a click can be undone from its notice. */
async function setSpam(id, spam, undoable) {
  try {
    const data = await api('POST', `/api/conversations/${encodeURIComponent(id)}/spam`, { spam });
    patchConversation(id, data.conversation);
    toast(spam ? 'Moved to Spam.' : 'Moved out of Spam.', 'success', undoable ? { label: 'Undo', onClick: () => setSpam(id, !spam, false) } : null, `spam:${id}`);
  } catch (e) {
    showError(e);
  }
}

function patchConversation(id, c) {
  if (S.conv && S.conv.id === id && c && (c.seq || 0) >= (S.conv.conversation.seq || 0)) {
    S.conv.conversation = c;
    renderConv();
  }
  scheduleRefresh();
}

// ---------------------------------------------------------------- dialogs

/** A yes/no question in the modal dialog: resolves true when confirmed. */
function confirmDialog({ title, description, submit = 'OK', danger = false }) {
  return new Promise((resolve) => {
    let yes = false;
    openDialog({
      title, description, submit, danger,
      onSubmit: () => { yes = true; },
      onClose: () => resolve(yes),
    });
  });
}

/**
 * A modal form. fields: [{name, label, type: text|textarea|select|datetime-local,
 * required, placeholder, options, min, value}]. onSubmit(values) may throw an ApiError,
 * shown in the dialog.
 */
function openDialog({ title, description = null, fields = [], submit = 'OK', danger = false, onSubmit, onClose = null }) {
  const dlg = $('dialog');
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const inputs = {};
  const controls = fields.map((f, i) => {
    const id = `dlg-${f.name}-${i}`;
    let input;
    if (f.type === 'textarea') input = h('textarea', { id, name: f.name, rows: 4, required: f.required, placeholder: f.placeholder || null });
    else if (f.type === 'select') input = h('select', { id, name: f.name }, f.options.map((o) => h('option', { value: o.value, text: o.label })));
    else input = h('input', { id, name: f.name, type: f.type || 'text', required: f.required, placeholder: f.placeholder || null, min: f.min || null });
    if (f.value) input.value = f.value;
    if (f.type === 'textarea') {
      // Ctrl+Enter sends any dialog; in a short answer (enterSends) Enter does, Shift+Enter adds a line
      input.addEventListener('keydown', (e) => {
        if (e.key !== 'Enter' || e.isComposing) return;
        if (e.ctrlKey || e.metaKey || (f.enterSends && !e.shiftKey && !e.altKey)) {
          e.preventDefault();
          form.requestSubmit();
        }
      });
    }
    inputs[f.name] = input;
    return h('div', { class: 'field' }, h('label', { for: id, text: f.label }), input);
  });
  const cancel = h('button', { type: 'button', class: 'btn ghost', text: 'Cancel', on: { click: () => dlg.close() } });
  const ok = h('button', { type: 'submit', class: ['btn', danger ? 'danger' : 'primary'], text: submit });
  const form = h('form', { class: 'dialog-form', method: 'dialog' },
    h('h2', { text: title }),
    description ? h('p', { class: 'dialog-desc', text: description }) : null,
    controls, err,
    h('div', { class: 'dialog-actions' }, cancel, ok));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = {};
    for (const [k, el] of Object.entries(inputs)) values[k] = el.value;
    for (const f of fields) {
      if (f.required && !String(values[f.name] || '').trim()) {
        err.hidden = false;
        err.textContent = `Please fill in “${f.label}”.`;
        inputs[f.name].focus();
        return;
      }
    }
    ok.disabled = true;
    try {
      await onSubmit(values);
      dlg.close();
    } catch (ex) {
      err.hidden = false;
      err.textContent = ex instanceof ApiError && ex.code === 'race_lost' ? ex.message : politeMessage(ex);
      if (ex instanceof ApiError && ex.code === 'invalid_transition' && S.conv) loadConversation(S.conv.id, { keepScroll: true });
    } finally {
      ok.disabled = false;
    }
  });
  fill(dlg, form);
  if (onClose) dlg.addEventListener('close', onClose, { once: true });
  dlg.showModal();
  const first = Object.values(inputs)[0];
  (first || ok).focus();
}

// ---------------------------------------------------------------- rendering: shell

function renderConn() {
  const el = $('conn');
  const label = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', stopped: 'Offline' }[S.conn] || S.conn;
  el.className = `conn conn-${S.conn}`;
  fill(el, h('span', { class: 'dot', 'aria-hidden': 'true' }), label);
  el.title = S.conn === 'live' ? 'Connected: updates arrive live' : 'Connection lost: reconnecting, nothing will be missed';
}

function renderMe() {
  const m = me();
  const el = $('me');
  if (!m) {
    fill(el);
    return;
  }
  fill(el,
    h('span', { class: 'avatar-wrap' }, avatar(m.name, m.id), h('span', { class: `pdot p-${m.presence}`, 'aria-hidden': 'true' })),
    h('span', { class: 'me-text' }, h('span', { class: 'me-name', text: m.name }), h('span', { class: 'me-role', text: ROLE_LABEL[m.role] || m.role })));
  for (const b of $('presence').querySelectorAll('button')) {
    const on = b.dataset.status === m.presence;
    b.setAttribute('aria-pressed', on ? 'true' : 'false');
  }
  $('presence').dataset.current = m.presence;
  const idle = m.presence === 'away' && autoAway(m.id);
  $('presence').dataset.idle = idle ? 'true' : 'false';
  $('presence').title = idle ? 'Away by itself: no activity for a while. Any key or click sets you online again.' : '';
}

function setPresence(status) {
  chosenByHand();
  if (!live || !live.send({ type: 'presence', status })) {
    toast('You are not connected right now; please try again in a moment.', 'error');
  }
}

function renderSidebar() {
  const folders = $('folders');
  fill(folders, FOLDERS.map(([key, label]) => {
    const active = S.route.kind === 'inbox' && S.route.key === key;
    const n = S.counts[key];
    return h('li', {}, h('a', {
      href: hashFor('inbox', key),
      class: ['nav-item', active && 'active'],
      dataset: { folder: key },
      'aria-current': active ? 'page' : null,
    }, h('span', { class: 'nav-label', text: label }), h('span', { class: ['count', (key === 'pending' || key === 'help_requests') && n > 0 && 'hot'], text: n === undefined ? '' : String(n) })));
  }));
  const onMentions = S.route.kind === 'mentions';
  fill($('mentions-nav'), h('li', {}, h('a', {
    href: hashFor('mentions', 'all'),
    class: ['nav-item', onMentions && 'active'],
    dataset: { folder: 'mentions' },
    'aria-current': onMentions ? 'page' : null,
  }, h('span', { class: 'nav-label', text: 'Mentions' }), h('span', { class: ['count', S.mentionsUnread > 0 && 'hot'], title: 'Unread mentions', text: S.mentionsUnread > 0 ? String(S.mentionsUnread) : '' }))));
  fill($('conv-states'), CONV_STATES.map(([key, label]) => {
    const active = S.route.kind === 'conversations' && S.route.key === key;
    const n = S.convCounts[key];
    return h('li', {}, h('a', {
      href: hashFor('conversations', key),
      class: ['nav-item', active && 'active'],
      dataset: { state: key },
      'aria-current': active ? 'page' : null,
    }, h('span', { class: 'nav-label', text: label }), h('span', { class: 'count', text: n === undefined ? '' : String(n) })));
  }));
  $('admin-nav').hidden = !isAdmin();
  for (const page of ADMIN_PAGES) {
    const link = $(`nav-${page}`);
    const here = S.route.kind === page;
    link.classList.toggle('active', here);
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const pending = S.counts.pending || 0;
  document.title = pending > 0 ? `(${pending}) Hub — agent console` : 'Hub — agent console';
}

/**
 * Who has what: "3 +1 held" (messages assigned or help answered, then on hold), or, for
 * an agent with a capacity (the most conversations automatic assignment gives them),
 * "2/5" (the conversations of those messages), with the detail on hover.
 */
function teamLoad(a) {
  const w = a.workload;
  if (!w) return null;
  const cap = capacityOf(a);
  const convs = w.conversations ?? w.assigned;
  const text = cap ? `${convs}/${cap}` : `${w.assigned}${w.on_hold ? ` +${w.on_hold} held` : ''}`;
  const held = cap ? `${convs} ${convs === 1 ? 'conversation' : 'conversations'} of ${cap}: ` : '';
  const title = `${held}${w.assigned} assigned, ${w.on_hold} on hold, ${w.help_requested} help ${w.help_requested === 1 ? 'request' : 'requests'} open`;
  return h('span', { class: ['team-load', w.assigned + w.on_hold === 0 && 'idle', cap && convs >= cap && 'full'], title, 'aria-label': title, dataset: { assigned: String(w.assigned), onHold: String(w.on_hold) }, text });
}

/** An agent's capacity (§6, set with PATCH /api/agents/{id}), or null (none, or 0). */
function capacityOf(a) {
  return Number.isInteger(a.capacity) && a.capacity > 0 ? a.capacity : null;
}

/** The team's workloads again after messages changed hands (at most every 2 s). */
const scheduleWorkload = debounce(() => loadAgents(), 500, 2000);

function renderTeam() {
  const agents = [...S.agents.values()].sort((a, b) => presenceRank(a) - presenceRank(b) || a.name.localeCompare(b.name));
  fill($('team'), agents.map((a) => h('li', { class: 'team-item', dataset: { agentId: a.id, presence: a.presence } },
    h('span', { class: 'avatar-wrap' }, avatar(a.name, a.id, 'sm'), h('span', { class: `pdot p-${a.presence}`, 'aria-hidden': 'true' })),
    h('span', { class: 'team-name', text: a.id === S.meId ? `${a.name} (you)` : a.name }),
    teamLoad(a),
    h('span', { class: `team-presence p-${a.presence}`, text: a.presence }))));
  const online = agents.filter((a) => a.presence !== 'offline').length;
  $('team-count').textContent = `${online} present`;
  renderListNote(); // (it says who can take Pending's messages now)
}

// ---------------------------------------------------------------- rendering: list

function statusBadge(status) {
  return h('span', { class: `badge s-${status}`, dataset: { status }, text: STATUS_LABEL[status] || status });
}

/**
 * Whether the hub assigns pending messages by itself (GET /api/automation, an
 * extension), read each time Pending is opened: its list then says so.
 */
async function loadAutomation() {
  try {
    S.autoAssign = !!(await api('GET', '/api/automation')).auto_assign;
  } catch {
    S.autoAssign = false; // (an older hub, or a failed read: no note)
  }
  renderListNote();
}

function renderListNote() {
  const { kind, key } = S.route;
  const note = $('list-note');
  note.hidden = !(S.autoAssign && kind === 'inbox' && key === 'pending');
  if (!note.hidden) note.textContent = autoAssignNote();
}

/**
 * What Pending says while the hub assigns by itself: and, when its messages must wait,
 * why (the hub's rules: only online agents, admins only with a capacity, 0 never; the
 * team's workloads say who is full).
 */
function autoAssignNote() {
  const base = 'The hub assigns these to online agents as they arrive';
  const takers = [...S.agents.values()].filter((a) => a.capacity !== 0 && (a.role !== 'admin' || Number.isInteger(a.capacity)));
  const online = takers.filter((a) => a.presence === 'online');
  if (!online.length) return `${base}; nobody who takes conversations is online now, so they wait.`;
  const full = (a) => Number.isInteger(a.capacity) && a.workload && Number.isInteger(a.workload.conversations) && a.workload.conversations >= a.capacity;
  if (online.every(full)) return `${base}; everyone online is at capacity now, so they wait until someone has room.`;
  if (online.some((a) => Array.isArray(a.channels))) return `${base}, each to an agent of its channel.`;
  return `${base}.`;
}

function renderList() {
  const { kind, key } = S.route;
  if (isAdminPage(kind)) return;
  renderListNote();
  const label = kind === 'search' ? `Search: “${key}”` : kind === 'mentions' ? 'Mentions' : (kind === 'inbox' ? FOLDERS : CONV_STATES).find(([k]) => k === key)[1];
  $('list-title').textContent = kind === 'conversations' ? `${label} conversations` : label;
  $('list-order').hidden = kind !== 'inbox';
  $('list-order').value = S.order;
  $('conv-order').hidden = kind !== 'conversations';
  $('conv-order').value = S.convOrder;
  $('conv-owner').hidden = kind !== 'conversations';
  $('conv-owner').value = S.convOwner;
  const list = $('list');
  const L = S.list;
  if (L.sig !== `${kind}:${key}` || (L.loading && !L.items.length)) {
    fill(list, h('li', { class: 'list-empty', text: 'Loading…' }));
    fill($('list-more'));
    return;
  }
  if (L.error && !L.items.length) {
    fill(list, h('li', { class: 'list-empty error', text: L.error }));
    fill($('list-more'));
    return;
  }
  // a conversation list shows everyone's, mine, or nobody's (of the rows loaded)
  const shown = kind === 'conversations' && S.convOwner !== 'all'
    ? L.items.filter((c) => (S.convOwner === 'mine' ? c.owner === S.meId : !c.owner))
    : L.items;
  if (!shown.length) {
    const empty = kind === 'conversations' && S.convOwner !== 'all'
      ? (S.convOwner === 'mine' ? 'You own none of these conversations.' : 'Every one of these conversations has an owner.')
      : kind === 'search' ? `Nothing matches “${key}”: no message, reply, note or customer name holds words starting with these.`
      : kind === 'mentions' ? 'Nobody has mentioned you yet. Internal comments that @mention you appear here.' : {
      pending: 'Nothing waiting. New customer messages appear here live.',
      mine: 'Nothing assigned to you right now.',
      on_hold: 'You have no messages on hold.',
      help_requests: 'No open help requests.',
      spam: 'No spam. Good.',
      all: 'No conversations yet.',
    }[key] || 'Nothing here yet.';
    fill(list, h('li', { class: 'list-empty', text: empty }));
    // (none of mine loaded yet: older pages may hold some)
    fill($('list-more'), L.items.length ? moreButton() : null);
    return;
  }
  if (kind === 'inbox') fill(list, L.items.map(messageRow));
  else if (kind === 'mentions') fill(list, L.items.map(mentionRow));
  else if (kind === 'search') fill(list, L.items.map(resultRow));
  else fill(list, (S.convOrder === 'activity' ? byActivity(shown) : shown).map(conversationRow));
  lookupContacts(L.items.map((it) => it.contact_id || S.convInfo.get(it.conversation_id)?.contact_id));
  fill($('list-more'), moreButton());
  markTypingRows();
}

/** "Load older" (or, oldest first, "Load newer") while the list has another page. */
function moreButton() {
  if (!S.list.more) return null;
  const newer = S.route.kind === 'inbox' && S.order === 'oldest';
  return h('button', { class: 'btn ghost small', text: newer ? 'Load newer' : 'Load older', on: { click: loadMore } });
}

/** A comment that mentions me: who wrote it, in whose conversation, what it says. */
function mentionRow(c) {
  const active = S.route.convId === c.conversation_id;
  const author = (c.author && c.author.id) || '';
  const where = c.contact_id ? `in ${customerName(c.contact_id)}’s conversation` : 'in a conversation';
  return h('li', {}, h('a', {
    href: hashFor('mentions', 'all', c.conversation_id),
    class: ['row', active && 'active'],
    dataset: { commentId: c.id, conversationId: c.conversation_id },
  },
  avatar(nameOf(author), author),
  h('span', { class: 'row-main' },
    h('span', { class: 'row-top' }, h('span', { class: 'row-who', text: nameOf(author) }), h('time', { class: 'row-time', dataset: { ago: c.at }, datetime: c.at, text: fmtAgo(c.at) })),
    h('span', { class: 'row-text', dir: 'auto', text: short(c.text) }),
    h('span', { class: 'row-meta' }, h('span', { class: 'meta-text', text: where })))));
}

const FOUND_LABEL = {
  message: 'Customer message',
  reply: 'Reply',
  comment: 'Internal comment',
  notes: 'Closing note',
  session: 'Session ended',
  rating: 'Rating',
  'help question': 'Help request',
  'help answer': 'Help answer',
  customer: 'Customer',
};

/**
 * A search result: the customer, what the text is and who wrote it, the text with the
 * matching words marked, and where the conversation stands now.
 */
function resultRow(ev) {
  const d = ev.data || {};
  const conv = S.convInfo.get(ev.conversation_id);
  const contactId = conv ? conv.contact_id : (d.message && d.message.contact_id) || (d.conversation && d.conversation.contact_id) || d.contact_id;
  const msgId = (d.message && d.message.id) || d.message_id || null;
  const active = S.route.convId === ev.conversation_id && (!S.route.msgId || S.route.msgId === msgId);
  const found = foundText(ev, (id) => {
    const c = id && S.contacts.get(id);
    return c ? [c.name, c.email].filter(Boolean).join(' · ') : '';
  });
  const author = (d.reply && d.reply.author) || (d.comment && d.comment.author);
  const by = author ? (author.kind === 'bot' ? botName(author.id) || 'Bot' : nameOf(author.id)) : (d.by && !String(d.by).startsWith('bot:') && d.by !== 'system' ? nameOf(d.by) : null);
  const label = found.what === 'rating' ? `Rating ${stars(d.score)}` : FOUND_LABEL[found.what] || 'Event';
  const meta = [h('span', { class: 'meta-text', text: by ? `${label} · ${by}` : label })];
  if (conv) {
    meta.push(h('span', { class: `badge c-${conv.state}`, text: conv.state === 'open' ? 'Open' : 'Closed' }));
    if (conv.spam) meta.push(h('span', { class: 'badge c-spam', text: 'Spam' }));
    if (conv.session === 'ended') meta.push(h('span', { class: 'badge c-ended', text: 'Session ended' }));
  }
  return h('li', {}, h('a', {
    href: hashFor('search', S.route.key, ev.conversation_id, msgId),
    class: ['row', 'result', active && 'active'],
    dataset: { seq: ev.seq, kind: ev.kind, conversationId: ev.conversation_id },
  },
  avatar(avatarLabel(contactId), contactId),
  h('span', { class: 'row-main' },
    h('span', { class: 'row-top' }, h('span', { class: 'row-who', text: customerName(contactId) }), h('time', { class: 'row-time', dataset: { ago: ev.at }, datetime: ev.at, text: fmtAgo(ev.at) })),
    h('span', { class: 'row-text', dir: 'auto' }, marked(found.text, queryWords(S.route.key))),
    h('span', { class: 'row-meta' }, meta))));
}

/** The conversations of the rows read (a row says when its session ended). */
function knowConversations(map) {
  if (!map) return;
  if (S.convInfo.size > 5000) S.convInfo.clear();
  for (const [id, c] of Object.entries(map)) S.convInfo.set(id, c);
}

/** "with Bob", and "(offline)" when Bob is: a message held by someone who left waits for nobody. */
function withWhom(id) {
  const a = S.agents.get(id);
  const offline = a && a.presence === 'offline';
  return h('span', { class: ['meta-text', offline && 'with-offline'], text: `with ${nameOf(id)}${offline ? ' (offline)' : ''}` });
}

function messageRow(m) {
  const active = S.route.convId === m.conversation_id && (!S.route.msgId || S.route.msgId === m.id);
  const meta = [statusBadge(m.status)];
  // still waiting, but its customer can no longer be answered there (§6.2): say so
  const conv = S.convInfo.get(m.conversation_id);
  if (conv && conv.session === 'ended' && WAITING.includes(m.status)) {
    meta.push(h('span', { class: 'badge c-ended', title: 'The customer can no longer be answered in this conversation: their next message starts a new one', text: 'Session ended' }));
  }
  if (m.assignee && m.status === 'answered') meta.push(h('span', { class: 'meta-text answered-by', text: `by ${nameOf(m.assignee)}` }));
  else if (m.assignee) meta.push(withWhom(m.assignee));
  if (m.status === 'on_hold' && m.hold_until) meta.push(h('span', { class: 'meta-text timer', dataset: { until: m.hold_until }, text: fmtLeft(m.hold_until) }));
  if (m.status === 'on_hold' && !m.hold_until) meta.push(h('span', { class: 'meta-text', text: 'no end' }));
  if (m.help && m.status === 'help_requested') meta.push(h('span', { class: 'meta-text help-q', text: `Q: ${m.help.question || ''}` }));
  else if (m.help && m.help.answer) meta.push(h('span', { class: 'meta-text help-a', text: `Help: ${m.help.answer}` }));
  return h('li', {}, h('a', {
    href: hashFor(S.route.kind, S.route.key, m.conversation_id, m.id),
    class: ['row', active && 'active'],
    dataset: { messageId: m.id, conversationId: m.conversation_id, contactId: m.contact_id, status: m.status },
  },
  avatar(avatarLabel(m.contact_id), m.contact_id),
  h('span', { class: 'row-main' },
    h('span', { class: 'row-top' }, h('span', { class: 'row-who', text: customerName(m.contact_id) }), h('time', { class: 'row-time', dataset: { ago: m.at }, datetime: m.at, text: fmtAgo(m.at) })),
    h('span', { class: 'row-text', dir: 'auto', text: m.text }),
    h('span', { class: 'row-meta' }, meta))));
}

/** A published assistant answers on this channel (as far as this console knows). */
function channelHasBot(channel) {
  for (const a of S.assistants.values()) if (a.status === 'published' && (a.channels || []).includes(channel)) return true;
  return false;
}

/** An open conversation the bot handles alone: bot on, no owner, not spam, a bot on its channel. */
function isBotOnly(c) {
  return c.state === 'open' && !c.spam && c.bot_active && !c.owner && channelHasBot(c.channel);
}

function conversationRow(c) {
  const active = S.route.convId === c.id;
  const botOnly = isBotOnly(c);
  const meta = [h('span', { class: `badge c-${c.state}`, text: c.state === 'open' ? 'Open' : 'Closed' })];
  if (c.session === 'ended') meta.push(h('span', { class: 'badge c-ended', text: 'Session ended' }));
  if (c.spam) meta.push(h('span', { class: 'badge c-spam', text: 'Spam' }));
  if (botOnly) meta.push(h('span', { class: 'badge c-bot', text: 'Bot only' }));
  meta.push(h('span', { class: 'meta-text', text: c.owner ? `Owner: ${nameOf(c.owner)}` : 'No owner' }));
  if (c.preview) meta.push(h('span', { class: 'meta-text', text: `${c.channel} · opened ${fmtAgo(c.opened_at)}` }));
  // the time of the latest item, else of the opening
  const last = (c.preview && c.preview.at) || c.opened_at;
  return h('li', {}, h('a', {
    href: hashFor(S.route.kind, S.route.key, c.id),
    class: ['row', active && 'active'],
    dataset: { conversationId: c.id, contactId: c.contact_id, state: c.state, spam: c.spam ? 'true' : 'false', botOnly: botOnly ? 'true' : 'false' },
  },
  avatar(avatarLabel(c.contact_id), c.contact_id),
  h('span', { class: 'row-main' },
    h('span', { class: 'row-top' }, h('span', { class: 'row-who', text: customerName(c.contact_id) }), h('time', { class: 'row-time', dataset: { ago: last }, datetime: last, text: fmtAgo(last) })),
    previewLine(c),
    h('span', { class: 'row-meta' }, meta))));
}

/**
 * Conversations by their latest message, reply or comment, newest first (else by their
 * opening): of the rows loaded, the one a customer just wrote in comes first.
 */
function byActivity(items) {
  const last = (c) => (c.preview && c.preview.at) || c.opened_at || '';
  // RFC 3339 UTC times with milliseconds compare as text
  return [...items].sort((a, b) => (last(a) < last(b) ? 1 : last(a) > last(b) ? -1 : (b.preview?.seq || b.seq) - (a.preview?.seq || a.seq)));
}

/** A conversation row's second line: its latest message, reply or comment, and who wrote it. */
function previewLine(c) {
  const p = c.preview;
  if (!p) return h('span', { class: 'row-text muted', text: `${c.channel} channel · opened ${fmtTime(c.opened_at)}` });
  const a = p.author || {};
  let who = '';
  if (p.type === 'comment') who = `Note by ${a.id === S.meId ? 'you' : nameOf(a.id)}: `;
  else if (a.kind === 'bot') who = 'Assistant: ';
  else if (a.kind === 'agent') who = a.id === S.meId ? 'You: ' : `${nameOf(a.id)}: `;
  const text = String(p.text || '').replace(/\s+/g, ' ').trim();
  // the text in its own direction (an Arabic reply after "Bob: " still reads right to left)
  return h('span', { class: ['row-text', `preview-${p.type}`], title: `${c.channel} channel · opened ${fmtTime(c.opened_at)}` },
    who && h('span', { class: 'preview-who', text: who }), h('bdi', { dir: 'auto', text: `${text}${p.truncated ? '…' : ''}` }));
}

// ---------------------------------------------------------------- rendering: conversation

let composer = null; // {root, reply, comment, mentions, error, sendBtn, tabs}

function buildConvShell() {
  const pane = $('conv-pane');
  const id = S.route.convId;
  const head = h('header', { id: 'conv-head', class: 'conv-head' });
  const timeline = h('div', { id: 'timeline', class: 'timeline', role: 'log', 'aria-label': 'Conversation timeline', tabindex: '-1' });
  const activities = h('div', { id: 'activities', class: 'activities', role: 'log', 'aria-label': 'Conversation activities', hidden: true });
  const tab = (key, label) => h('button', {
    type: 'button', role: 'tab', class: 'tab', id: `conv-tab-${key}`, dataset: { tab: key }, text: label,
    on: { click: () => setConvTab(key) },
  });
  const customer = h('div', { id: 'customer', class: 'activities customer', 'aria-label': 'The customer and their conversations', hidden: true });
  const tabs = h('div', { class: 'conv-tabs', role: 'tablist', 'aria-label': 'Conversation view' }, tab('timeline', 'Conversation'), tab('activities', 'Activities'), tab('customer', 'Customer'));
  composer = buildComposer(id);
  S.activities = null;
  S.customer = null;
  fill(pane, h('div', { id: 'conv-view', class: 'conv-view', dataset: { id } }, head, tabs, timeline, activities, customer, composer.root));
  showConvTab();
  fill(head, h('button', { class: 'icon-btn back', 'aria-label': 'Back to the list', on: { click: goBack } }, icon('back')), h('div', { class: 'conv-title', text: 'Loading…' }));
}

// ---------------------------------------------------------------- activities (seed 001)

function setConvTab(key) {
  S.convTab = key;
  showConvTab();
}

/** Shows the chosen view of the conversation; the activities are loaded when first shown. */
function showConvTab() {
  const view = $('conv-view');
  if (!view) return;
  const key = S.convTab;
  for (const b of view.querySelectorAll('.conv-tabs .tab')) b.setAttribute('aria-selected', b.dataset.tab === key ? 'true' : 'false');
  $('timeline').hidden = key !== 'timeline';
  $('activities').hidden = key !== 'activities';
  $('customer').hidden = key !== 'customer';
  const id = view.dataset.id;
  if (key === 'activities' && (!S.activities || S.activities.convId !== id || (S.activities.error && !S.activities.loading))) loadActivities(id);
  else renderActivities();
  // read again each time it is shown: it follows events only while visible
  if (key === 'customer') loadCustomer(id);
  else renderCustomer();
}

// ---------------------------------------------------------------- the customer (seed 003: "le profil de l'utilisateur")

/** Loads the customer of the conversation shown and every conversation they have had (an extension). */
async function loadCustomer(convId) {
  const contactId = S.conv && S.conv.id === convId ? S.conv.conversation.contact_id : null;
  const keep = S.customer && S.customer.convId === convId ? S.customer : null;
  S.customer = { convId, contactId, contact: keep && keep.contact, conversations: keep ? keep.conversations : [], loading: true, error: null };
  renderCustomer();
  if (!contactId) return; // loaded with the conversation (loadConversation calls back)
  try {
    const data = await api('GET', `/api/contacts/${encodeURIComponent(contactId)}`);
    if (!S.customer || S.customer.convId !== convId) return;
    S.contacts.set(contactId, data.contact);
    Object.assign(S.customer, { contact: data.contact, conversations: data.conversations || [], loading: false });
    for (const c of S.customer.conversations) S.owners.set(c.id, c.owner ?? null);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'unauthorized') return showError(e);
    if (!S.customer || S.customer.convId !== convId) return;
    S.customer.loading = false;
    S.customer.error = politeMessage(e);
  }
  renderCustomer();
}

/** The customer's conversations change with their events: read again, at most every 300 ms. */
const scheduleCustomer = debounce(() => {
  if (S.customer && !$('customer')?.hidden) loadCustomer(S.customer.convId);
}, 300, 1000);

/** Whether an event concerns the customer shown (one of their conversations, or a new one). */
function concernsCustomer(ev) {
  const C = S.customer;
  if (!C || !C.contactId) return false;
  const d = ev.data || {};
  if (d.conversation && d.conversation.contact_id === C.contactId) return true;
  return ev.conversation_id === C.convId || C.conversations.some((c) => c.id === ev.conversation_id);
}

function renderCustomer() {
  const el = $('customer');
  const C = S.customer;
  if (!el || !C || el.hidden) return;
  if (C.loading && !C.contact) {
    fill(el, h('p', { class: 'list-empty', text: 'Loading…' }));
    return;
  }
  if (C.error && !C.contact) {
    fill(el, h('p', { class: 'list-empty error', text: C.error }),
      h('button', { type: 'button', class: 'btn small', text: 'Retry', on: { click: () => loadCustomer(C.convId) } }));
    return;
  }
  const k = C.contact || {};
  const facts = [
    ['Name', k.name && k.name.trim() ? k.name : 'not given'],
    ['Email', k.email || 'not given'],
    ['Channel', k.channel || ''],
    ['Customer id', k.id || C.contactId],
  ];
  // the latest page this conversation noted (the widget's page views, an extension)
  const page = S.conv && S.conv.id === C.convId
    ? S.conv.items.filter((it) => it.type === 'event' && it.kind === 'conversation.page').sort((a, b) => b.seq - a.seq)[0]
    : null;
  const pageFact = page && /^https?:\/\//i.test(page.data.url || '')
    ? h('a', { href: page.data.url, target: '_blank', rel: 'noopener noreferrer nofollow', class: 'customer-page', text: pageLabel(page.data) })
    : null;
  const others = C.conversations.length - 1;
  fill(el,
    h('section', { class: 'customer-card' },
      h('h3', { text: customerName(C.contactId) }),
      h('dl', { class: 'customer-facts' }, facts.map(([dt, dd]) => [h('dt', { text: dt }), h('dd', { text: dd })]),
        pageFact ? [h('dt', { text: 'Latest page' }), h('dd', {}, pageFact, h('span', { class: 'muted', text: ` · ${fmtAgo(page.at)}` }))] : [])),
    h('h4', { class: 'customer-convs-title', text: others > 0 ? `Conversations (${C.conversations.length}: this one and ${others} other${others === 1 ? '' : 's'})` : 'Conversations (this one only)' }),
    h('ul', { class: 'list customer-convs' }, C.conversations.map((c) => {
      const li = conversationRow(c);
      const a = li.querySelector('a');
      if (c.id === C.convId) {
        a.classList.add('current');
        a.setAttribute('aria-current', 'true');
        a.querySelector('.row-meta').prepend(h('span', { class: 'badge c-this', text: 'This conversation' }));
      }
      return li;
    })));
}

async function loadActivities(id) {
  const keep = S.activities && S.activities.convId === id ? S.activities.items : [];
  S.activities = { convId: id, items: keep, loading: true, error: null };
  renderActivities();
  try {
    const data = await api('GET', `/api/conversations/${encodeURIComponent(id)}/activities`);
    if (!S.activities || S.activities.convId !== id) return;
    S.activities.loading = false;
    addActivities(data.items || []);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'unauthorized') return showError(e);
    if (!S.activities || S.activities.convId !== id) return;
    S.activities.loading = false;
    S.activities.error = politeMessage(e);
  }
  renderActivities();
}

/** Merges events into the activities (once each, by seq), newest first. */
function addActivities(events) {
  const A = S.activities;
  const seen = new Set(A.items.map((e) => e.seq));
  for (const ev of events) {
    if (ev.seq === undefined || seen.has(ev.seq)) continue;
    seen.add(ev.seq);
    A.items.push({ seq: ev.seq, kind: ev.kind, conversation_id: ev.conversation_id, at: ev.at, data: ev.data || {} });
  }
  A.items.sort((a, b) => b.seq - a.seq);
}

function renderActivities() {
  const el = $('activities');
  const A = S.activities;
  if (!el || !A || el.hidden) return;
  if (A.loading && !A.items.length) {
    fill(el, h('p', { class: 'list-empty', text: 'Loading…' }));
    return;
  }
  if (A.error && !A.items.length) {
    fill(el, h('p', { class: 'list-empty error', text: A.error }),
      h('button', { type: 'button', class: 'btn small', text: 'Retry', on: { click: () => loadActivities(A.convId) } }));
    return;
  }
  if (!A.items.length) {
    fill(el, h('p', { class: 'list-empty', text: 'No activity yet.' }));
    return;
  }
  fill(el, h('ol', { class: 'activity-list' }, A.items.map((ev) => h('li', { class: ['activity', `k-${ev.kind.replace('.', '-')}`], dataset: { seq: ev.seq, kind: ev.kind } },
    h('span', { class: 'activity-text', text: describeEvent(ev, who, messageText, customerName) }),
    h('time', { datetime: ev.at, title: ev.at, text: fmtTime(ev.at) })))));
}

function goBack() {
  location.hash = hashFor(S.route.kind, S.route.key);
}

function renderConv({ scroll = 'auto' } = {}) {
  const pane = $('conv-pane');
  if (!S.route.convId) {
    composer = null;
    fill(pane, h('div', { class: 'conv-empty' }, icon('chat', 'big'), h('p', { text: 'Select a message or a conversation to see its timeline.' })));
    return;
  }
  if (S.convError) {
    composer = null;
    fill(pane, h('div', { class: 'conv-empty' },
      h('button', { class: 'icon-btn back', 'aria-label': 'Back to the list', on: { click: goBack } }, icon('back')),
      h('p', { class: 'error', text: S.convError }),
      S.convRetry ? h('button', { class: 'btn', type: 'button', dataset: { convAction: 'retry' }, text: 'Retry', on: { click: () => openConversation(S.route.convId) } }) : null));
    return;
  }
  if (!S.conv) return;
  if (!$('conv-view') || $('conv-view').dataset.id !== S.conv.id) buildConvShell();
  renderConvHead();
  const tl = $('timeline');
  // an open menu or a selection in the timeline stays where it is: no following the bottom
  const sel = window.getSelection();
  const busyHere = !!tl.querySelector('details.menu[open]') || (sel && !sel.isCollapsed && tl.contains(sel.anchorNode));
  const nearBottom = !busyHere && tl.scrollHeight - tl.scrollTop - tl.clientHeight < 80;
  const prevTop = tl.scrollTop;
  patchTimeline(tl, collapsePages(S.conv.items));
  if (scroll === 'bottom' || (scroll === 'auto' && nearBottom)) tl.scrollTop = tl.scrollHeight;
  else tl.scrollTop = prevTop;
  updateComposer();
}

/**
 * The timeline as drawn: page views with nothing between them are one row, the latest
 * page, which says how many came before it (the Activities tab lists each one).
 */
function collapsePages(items) {
  const isPage = (it) => it && it.type === 'event' && it.kind === 'conversation.page';
  const out = [];
  for (const it of items) {
    const prev = out[out.length - 1];
    if (isPage(it) && isPage(prev)) out[out.length - 1] = { ...it, earlier: [...(prev.earlier || []), prev] };
    else out.push(it);
  }
  return out;
}

/**
 * Brings the timeline up to date item by item (keyed by item id): an item whose markup
 * did not change keeps its element, so a live event leaves the agent's open menu, text
 * selection and focus alone; only new or changed items are (re)built.
 */
function patchTimeline(tl, items) {
  if (tl.dataset.convId !== S.conv.id) {
    tl.replaceChildren();
    tl.dataset.convId = S.conv.id;
  }
  const old = new Map();
  for (const el of tl.children) if (el.dataset.key) old.set(el.dataset.key, el);
  const wanted = items.map((it) => {
    const key = itemKey(it);
    const fresh = renderItem(it);
    const sig = itemSignature(fresh);
    const cur = old.get(key);
    if (cur && cur.dataset.sig === sig) return cur;
    fresh.dataset.key = key;
    fresh.dataset.sig = sig;
    if (cur) keepMenusOpen(cur, fresh);
    return fresh;
  });
  const keep = new Set(wanted);
  for (const el of [...tl.children]) if (!keep.has(el)) el.remove();
  wanted.forEach((el, i) => {
    if (tl.children[i] !== el) tl.insertBefore(el, tl.children[i] || null);
  });
}

/** An item's markup, without what changes by itself every second (hold timers). */
function itemSignature(el) {
  const timers = [...el.querySelectorAll('[data-until]')];
  const texts = timers.map((x) => x.textContent);
  for (const x of timers) x.textContent = '';
  const sig = el.outerHTML;
  timers.forEach((x, i) => { x.textContent = texts[i]; });
  return sig;
}

/** A changed item's menus stay open when the same menu is still offered. */
function keepMenusOpen(from, to) {
  for (const d of from.querySelectorAll('details.menu[open]')) {
    const action = d.querySelector('summary') && d.querySelector('summary').dataset.action;
    const twin = action && to.querySelector(`details.menu > summary[data-action="${CSS.escape(action)}"]`);
    if (twin) twin.parentElement.open = true;
  }
}

function renderConvHead() {
  const c = S.conv.conversation;
  const facts = [
    h('span', { class: `badge c-${c.state}`, text: c.state === 'open' ? 'Open' : 'Closed' }),
    h('span', { class: `badge ${c.session === 'ended' ? 'c-ended' : 'c-active'}`, dataset: { session: c.session }, text: c.session === 'ended' ? 'Session ended' : 'Session active' }),
    c.spam ? h('span', { class: 'badge c-spam', text: 'Spam' }) : null,
    // after the session has ended no bot (nor anyone) answers there: no "bot on"
    h('span', { class: 'meta-text conv-meta', text: `${c.channel} · owner: ${c.owner ? nameOf(c.owner) : 'none'} · ${c.session === 'ended' ? 'session ended' : `bot ${c.bot_active ? 'on' : 'off'}`}` }),
  ];
  // who the customer is, as they told the widget (a name shows as the title)
  const contact = S.contacts.get(c.contact_id);
  if (contact && contact.email) facts.push(h('span', { class: 'meta-text contact-email', text: contact.email }));
  const actions = [];
  if (c.state === 'open') actions.push(h('button', { class: 'btn', dataset: { convAction: 'close' }, text: 'Close…', on: { click: closeConversation } }));
  if (c.session === 'active') actions.push(h('button', { class: 'btn', dataset: { convAction: 'end-session' }, text: 'End session…', on: { click: endSession } }));
  actions.push(h('button', { class: 'btn', dataset: { convAction: 'spam' }, text: c.spam ? 'Not spam' : 'Spam', on: { click: (e) => toggleSpam(e.currentTarget) } }));
  actions.push(h('button', { class: 'btn', dataset: { convAction: 'transcript' }, text: 'Transcript…', on: { click: downloadTranscript } }));
  const give = ownerAction(c);
  if (give) actions.unshift(h('button', { class: 'btn', dataset: { convAction: 'owner' }, text: give, on: { click: (e) => changeOwner(e.currentTarget) } }));
  fill($('conv-head'),
    h('button', { class: 'icon-btn back', 'aria-label': 'Back to the list', on: { click: goBack } }, icon('back')),
    avatar(avatarLabel(c.contact_id), c.contact_id),
    h('div', { class: 'conv-title' }, h('h2', { text: customerName(c.contact_id) }), h('div', { class: 'conv-facts' }, facts)),
    h('div', { class: 'conv-actions' }, actions));
}

function renderItem(it) {
  switch (it.type) {
    case 'message': return renderMessage(it);
    case 'reply': return renderReply(it);
    case 'comment': return renderComment(it);
    default: return renderEvent(it);
  }
}

function renderMessage(m) {
  const status = [statusBadge(m.status)];
  if (m.assignee && !['answered', 'pending'].includes(m.status)) status.push(withWhom(m.assignee));
  if (m.status === 'on_hold') {
    status.push(m.hold_until
      ? h('span', { class: 'meta-text timer' }, icon('clock'), h('span', { dataset: { until: m.hold_until }, text: fmtLeft(m.hold_until) }), ` · until ${fmtTime(m.hold_until)}`)
      : h('span', { class: 'meta-text', text: 'on hold, no end' }));
  }
  let help = null;
  if (m.help) {
    help = h('div', { class: 'help-box' },
      h('div', { class: 'help-q' }, icon('help'), h('strong', { text: `${nameOf(m.help.requested_by)} asked: ` }), h('span', { text: m.help.question || '' })),
      m.help.answer ? h('div', { class: 'help-a' }, h('strong', { text: 'Answer: ' }), h('span', { text: m.help.answer })) : null);
  }
  const acts = messageActions(m).map((a) => {
    if (a.action === 'hold') {
      return holdMenu(m, a);
    }
    return h('button', {
      class: ['btn', 'small', a.primary && 'primary'],
      dataset: { action: a.action },
      disabled: !a.enabled,
      title: a.why,
      text: a.label,
      on: { click: (e) => onMessageAction(m, a, e.currentTarget) },
    });
  });
  return h('article', { class: ['tl', 'tl-message', S.route.msgId === m.id && 'focused'], dataset: { messageId: m.id, status: m.status } },
    h('div', { class: 'tl-head' }, h('span', { class: 'tl-who', text: customerName(m.contact_id) }), h('time', { datetime: m.at, text: fmtTime(m.at) })),
    ...bubble('customer', `message:${m.id}`, m.text),
    h('div', { class: 'msg-status' }, status),
    help,
    acts.length ? h('div', { class: 'msg-actions' }, acts) : null);
}

function holdMenu(m, a) {
  if (!a.enabled) return h('button', { class: 'btn small', dataset: { action: 'hold' }, disabled: true, title: a.why, text: 'Hold' });
  const details = h('details', { class: 'menu' });
  const choose = (spec) => (e) => {
    details.open = false;
    hold(m, spec, e.currentTarget);
  };
  details.append(
    h('summary', { class: 'btn small', dataset: { action: 'hold' } }, 'Hold', icon('chevron')),
    h('div', { class: 'menu-items', role: 'menu' },
      h('button', { role: 'menuitem', dataset: { hold: '900' }, text: 'For 15 minutes', on: { click: choose(900) } }),
      h('button', { role: 'menuitem', dataset: { hold: '3600' }, text: 'For 1 hour', on: { click: choose(3600) } }),
      h('button', { role: 'menuitem', dataset: { hold: 'until' }, text: 'Until…', on: { click: choose('until') } }),
      h('button', { role: 'menuitem', dataset: { hold: 'none' }, text: 'Until further notice', on: { click: choose('none') } })));
  return details;
}

function renderReply(r) {
  const bot = r.author && r.author.kind === 'bot';
  const author = bot ? botName(r.author.id) || 'Bot' : nameOf(r.author && r.author.id);
  return h('article', { class: ['tl', 'tl-reply', bot && 'bot'], dataset: { replyId: r.id } },
    h('div', { class: 'tl-head' }, h('span', { class: 'tl-who', text: author }), h('time', { datetime: r.at, text: fmtTime(r.at) })),
    ...bubble('brand', `reply:${r.id}`, r.text));
}

/** Texts longer than this (characters or lines) are folded, with a Show all button. */
const LONG_CHARS = 1200;
const LONG_LINES = 16;

/**
 * A message's or reply's bubble; a long text is folded to a few lines so that the
 * actions below it stay in reach, and unfolds (for as long as the page lives) on demand.
 */
function bubble(kind, key, text) {
  const b = h('div', { class: ['bubble', kind], dir: 'auto', text });
  const long = text.length > LONG_CHARS || text.split('\n').length > LONG_LINES;
  if (!long) return [b];
  const open = S.unfolded.has(key);
  b.classList.toggle('folded', !open);
  const toggle = h('button', {
    class: 'btn ghost small fold-toggle', type: 'button', 'aria-expanded': open ? 'true' : 'false',
    text: open ? 'Show less' : `Show all (${text.length.toLocaleString('en')} characters)`,
    on: {
      click: () => {
        const opening = !S.unfolded.has(key);
        if (opening) S.unfolded.add(key);
        else S.unfolded.delete(key);
        b.classList.toggle('folded', !opening);
        toggle.setAttribute('aria-expanded', opening ? 'true' : 'false');
        toggle.textContent = opening ? 'Show less' : `Show all (${text.length.toLocaleString('en')} characters)`;
      },
    },
  });
  return [b, toggle];
}

/** Comment text with @mentions highlighted (text nodes only). */
function commentBody(c) {
  const names = (c.mentions || []).map((id) => S.agents.get(id)).filter(Boolean)
    .flatMap((a) => [a.name, a.id]).sort((x, y) => y.length - x.length);
  if (!names.length) return [c.text];
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`@(${names.map(esc).join('|')})`, 'gi');
  const out = [];
  let last = 0;
  for (const match of c.text.matchAll(re)) {
    out.push(c.text.slice(last, match.index));
    out.push(h('span', { class: 'mention', text: match[0] }));
    last = match.index + match[0].length;
  }
  out.push(c.text.slice(last));
  return out;
}

function renderComment(c) {
  return h('article', { class: 'tl tl-comment', dataset: { commentId: c.id } },
    h('div', { class: 'tl-head' }, h('span', { class: 'tl-who', text: nameOf(c.author && c.author.id) }), h('span', { class: 'note-label' }, icon('lock'), 'Internal comment'), h('time', { datetime: c.at, text: fmtTime(c.at) })),
    h('div', { class: 'note', dir: 'auto' }, commentBody(c)));
}

function renderEvent(ev) {
  // a run of page views (collapsePages): how many came before, listed on hover
  const earlier = ev.earlier || [];
  const before = earlier.length
    ? h('span', { class: 'tl-event-more', title: earlier.map((e) => pageLabel(e.data)).join('\n'), text: `after ${earlier.length} other page${earlier.length === 1 ? '' : 's'}` })
    : null;
  return h('div', { class: ['tl', 'tl-event', `k-${ev.kind.replace('.', '-')}`], dataset: { kind: ev.kind, seq: ev.seq } },
    h('span', { class: 'tl-event-text', text: describeEvent(ev, who, messageText, customerName) }),
    before,
    h('time', { datetime: ev.at, text: fmtTime(ev.at) }));
}

function focusMessage(id) {
  const el = document.querySelector(`.tl-message[data-message-id="${CSS.escape(id)}"]`);
  if (!el) return;
  document.querySelectorAll('.tl-message.focused').forEach((x) => x.classList.remove('focused'));
  el.classList.add('focused');
  el.scrollIntoView({ block: 'center' });
}

// ---------------------------------------------------------------- composer

function buildComposer(convId) {
  const draft = S.drafts.get(convId) || { reply: '', comment: '' };
  const reply = h('textarea', { id: 'reply-input', class: 'composer-input', rows: 3, placeholder: 'Reply to the customer…  (Enter to send, Shift+Enter for a new line, / for a saved reply)', 'aria-label': 'Reply to the customer' });
  const comment = h('textarea', { id: 'comment-input', class: 'composer-input', rows: 3, placeholder: 'Internal comment, only your team sees it. Type @ to mention a teammate.', 'aria-label': 'Internal comment' });
  reply.value = draft.reply;
  comment.value = draft.comment;
  const menu = h('ul', { class: 'mention-menu', role: 'listbox', hidden: true, id: 'mention-menu' });
  const error = h('p', { class: 'form-error composer-error', role: 'alert', hidden: true });
  const note = h('p', { class: 'composer-note', role: 'status', hidden: true }); // e.g. an @word that mentions nobody
  const notice = h('p', { class: 'composer-notice', hidden: true });
  const sendBtn = h('button', { class: 'btn primary', id: 'composer-send', type: 'button' }, icon('send'), h('span', { text: 'Send' }));
  const tabReply = h('button', { role: 'tab', class: 'tab', dataset: { mode: 'reply' }, text: 'Reply' });
  const tabComment = h('button', { role: 'tab', class: 'tab', dataset: { mode: 'comment' } }, icon('lock'), 'Internal comment');
  const hint = h('span', { class: 'composer-hint' });
  const typingLine = h('p', { class: 'composer-typing', 'aria-live': 'polite', hidden: true });
  const root = h('div', { class: 'composer', dataset: { mode: S.composerMode } },
    typingLine,
    h('div', { class: 'composer-tabs', role: 'tablist' }, tabReply, tabComment),
    notice,
    h('div', { class: 'composer-box' }, reply, comment, menu),
    error,
    note,
    h('div', { class: 'composer-foot' }, hint, sendBtn));
  const c = { root, reply, comment, menu, error, note, notice, sendBtn, tabReply, tabComment, hint, typingLine, convId };
  tabReply.addEventListener('click', () => setMode('reply'));
  tabComment.addEventListener('click', () => setMode('comment'));
  sendBtn.addEventListener('click', () => {
    typing.stop();
    submitComposer();
  });
  for (const ta of [reply, comment]) {
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && menu.hidden && !ta.readOnly) {
        e.preventDefault();
        typing.stop();
        submitComposer();
      }
    });
    ta.addEventListener('input', () => {
      error.hidden = true;
      note.hidden = true;
      saveDraft();
      if (ta === reply) editedWhileSending(convId, reply.value.trim());
      typing.say(convId, ta === reply ? 'reply' : 'comment', ta.value.trim() !== '' && !ta.readOnly);
    });
  }
  setupMentions(comment, menu);
  setupSavedPicker(reply, menu, {
    api,
    // the names as given (a visitor without one gets the placeholder's fallback)
    who: () => {
      const contact = S.conv && S.contacts.get(S.conv.conversation.contact_id);
      return { customer: (contact && contact.name) || '', agent: (S.agents.get(S.meId) || {}).name || '' };
    },
    onInsert: () => {
      error.hidden = true;
      saveDraft();
    },
  });
  return c;
}

function saveDraft() {
  if (!composer) return;
  S.drafts.set(composer.convId, { reply: composer.reply.value, comment: composer.comment.value });
  keepDraftsSoon();
}

// Drafts survive a reload of the tab (sessionStorage: this tab only, cleared on sign-out),
// tagged with their agent so that another agent signing in never finds them.
const DRAFTS_KEY = 'hub.console.drafts';

function keepDrafts() {
  if (!S.meId) return;
  const drafts = [...S.drafts].filter(([, d]) => d.reply.trim() || d.comment.trim());
  try {
    sessionStorage.setItem(DRAFTS_KEY, JSON.stringify({ agent: S.meId, drafts }));
  } catch {
    // storage full or off: drafts live as long as the page
  }
}
const keepDraftsSoon = debounce(keepDrafts, 300);

/** Brings back this agent's drafts kept before a reload (once its id is known). */
function restoreDrafts() {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(DRAFTS_KEY) || 'null');
  } catch {
    kept = null;
  }
  if (!kept || kept.agent !== S.meId || !Array.isArray(kept.drafts)) return;
  for (const [id, d] of kept.drafts) {
    if (!S.drafts.has(id) && d && typeof d.reply === 'string' && typeof d.comment === 'string') S.drafts.set(id, d);
  }
  if (composer && !composer.reply.value && !composer.comment.value) {
    const d = S.drafts.get(composer.convId);
    if (d) {
      composer.reply.value = d.reply;
      composer.comment.value = d.comment;
      if (S.conv) updateComposer();
    }
  }
}

function setMode(mode) {
  if (mode === 'reply' && S.conv && S.conv.conversation.session === 'ended') mode = 'comment';
  S.composerMode = mode;
  updateComposer();
  (mode === 'reply' ? composer.reply : composer.comment).focus();
}

function updateComposer() {
  if (!composer || !S.conv) return;
  const ended = S.conv.conversation.session === 'ended';
  let mode = S.composerMode;
  if (ended && mode === 'reply') mode = 'comment';
  composer.root.dataset.mode = mode;
  // a reply typed when the session ended stays in sight (read-only), never lost
  const stranded = ended && composer.reply.value.trim() !== '';
  composer.reply.hidden = mode !== 'reply' && !stranded;
  composer.reply.readOnly = ended;
  composer.comment.hidden = mode !== 'comment';
  composer.tabReply.setAttribute('aria-selected', mode === 'reply' ? 'true' : 'false');
  composer.tabComment.setAttribute('aria-selected', mode === 'comment' ? 'true' : 'false');
  composer.tabReply.disabled = ended;
  composer.tabReply.title = ended ? 'The session has ended: replies are off' : '';
  composer.notice.hidden = !ended;
  if (stranded) {
    fill(composer.notice,
      h('span', { text: 'The session has ended: this reply can no longer be sent. ' }),
      h('button', { class: 'btn small', type: 'button', dataset: { composerAction: 'move-to-comment' }, text: 'Move it to an internal comment', on: { click: moveReplyToComment } }));
  } else {
    composer.notice.textContent = ended ? 'The customer’s session has ended: they can no longer receive replies here. Internal comments are still possible.' : '';
  }
  fill(composer.sendBtn, icon(mode === 'reply' ? 'send' : 'lock'), h('span', { text: mode === 'reply' ? 'Send reply' : 'Add comment' }));
  const waiting = S.conv.items.filter((it) => it.type === 'message' && (it.status === 'pending' || (it.assignee === S.meId && ['assigned', 'on_hold', 'help_answered'].includes(it.status)))).length;
  // open messages a colleague holds are not answered by my reply (§6.1): say so
  const held = new Map(); // colleague id → how many
  for (const it of S.conv.items) {
    if (it.type !== 'message' || !['assigned', 'on_hold', 'help_answered'].includes(it.status)) continue;
    if (!it.assignee || it.assignee === S.meId || String(it.assignee).startsWith('bot:')) continue;
    held.set(it.assignee, (held.get(it.assignee) || 0) + 1);
  }
  let withOthers = '';
  if (held.size) {
    const n = [...held.values()].reduce((a, b) => a + b, 0);
    const names = [...held.keys()].map(nameOf);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0];
    withOthers = `${n === 1 ? 'An open message is' : `${n} open messages are`} with ${list}: your reply will not answer ${n === 1 ? 'it' : 'them'}.`;
  }
  composer.hint.dataset.heldBy = [...held.keys()].join(' ');
  renderTyping();
  composer.hint.textContent = mode === 'reply'
    ? [waiting ? `Replying answers ${waiting} waiting message${waiting > 1 ? 's' : ''}.` : '', withOthers].filter(Boolean).join(' ')
    : 'Only your team sees comments.';
}

/** Says under the timeline who types in the open conversation ("Marie Curie is typing…",
 * "Sue Chen is writing a reply…"): a colleague's reply is one the customer may get
 * before, or besides, mine. */
function renderTyping() {
  if (!composer || !S.conv) return;
  const who = typing.inConversation(S.conv.conversation, S.meId);
  const line = composer.typingLine;
  line.hidden = who.length === 0;
  line.dataset.who = who.map((w) => (w.customer ? 'customer' : `${w.agentId}:${w.kind}`)).join(' ');
  line.classList.toggle('others-replying', who.some((w) => w.kind === 'reply'));
  line.textContent = who.map((w) => {
    if (w.customer) return `${customerName(S.conv.conversation.contact_id)} is typing…`;
    return `${nameOf(w.agentId)} is writing ${w.kind === 'reply' ? 'a reply' : 'an internal comment'}…`;
  }).join(' · ');
}

/**
 * The @words of a comment that mention nobody: an `@` at the start of a word (not in an
 * e-mail address) not followed by the name or id of one of the agents the hub found in it.
 */
function unmatchedMentions(c) {
  if (!c || typeof c.text !== 'string') return [];
  // the hub's fold (auth::caseless): NFKC, without invisible characters, then lower,
  // upper and lower case (so "STRASSE" spells "Straße")
  const norm = (x) => String(x).normalize('NFKC').replace(/\p{Default_Ignorable_Code_Point}/gu, '')
    .toLowerCase().toUpperCase().toLowerCase();
  const known = (c.mentions || []).flatMap((id) => {
    const a = S.agents.get(id);
    return a ? [norm(a.name), norm(a.id)] : [norm(id)];
  });
  const out = [];
  for (const m of c.text.matchAll(/(^|[^\p{L}\p{N}_.@])@([^\s@]+)/gu)) {
    const at = m.index + m[1].length + 1;
    const rest = norm(c.text.slice(at));
    if (known.some((k) => k && rest.startsWith(k))) continue;
    const word = m[2].replace(/[.,;:!?…)\]}'"»”’]+$/u, '');
    if (word && !out.includes(word)) out.push(word);
  }
  return out;
}

/** Moves a reply that can no longer be sent into the internal comment box. */
function moveReplyToComment() {
  if (!composer) return;
  const text = composer.reply.value.trim();
  const before = composer.comment.value.trim();
  composer.comment.value = before ? `${before}\n\n${text}` : text;
  composer.reply.value = '';
  saveDraft();
  setMode('comment');
}

async function submitComposer() {
  if (!composer || !S.conv) return;
  const mode = composer.root.dataset.mode;
  const input = mode === 'reply' ? composer.reply : composer.comment;
  const text = input.value.trim();
  if (!text) {
    input.focus();
    return;
  }
  const convId = S.conv.id;
  // Enter again while this reply is on its way (the button is off, the key is not)
  if (mode === 'reply' && S.sends.get(convId)?.busy) return;
  composer.sendBtn.disabled = true;
  composer.error.hidden = true;
  composer.note.hidden = true;
  let send = null;
  try {
    if (mode === 'reply') {
      send = replySend(convId, text);
      send.busy = true;
      const res = await postReply(convId, send);
      if (res && S.conv && S.conv.id === convId) addItem(S.conv, { ...res.reply, type: 'reply' });
      // clears the draft that was sent, wherever the agent is now, and only if it is
      // still the text that went out
      replyDelivered(convId, send);
      // the statuses it changed come as live events; while the socket is still coming
      // back, the conversation is read again instead
      if (S.conn !== 'live' && S.conv && S.conv.id === convId) loadConversation(convId, { keepScroll: true });
    } else {
      const res = await api('POST', `/api/conversations/${encodeURIComponent(convId)}/comments`, { text });
      if (S.conv && S.conv.id === convId) addItem(S.conv, { ...res.comment, type: 'comment' });
      if (composer && composer.convId === convId) {
        input.value = '';
        saveDraft();
        // an @word the hub matched to nobody: the writer is told (nobody was notified)
        const missed = unmatchedMentions(res.comment);
        if (missed.length) {
          composer.note.hidden = false;
          composer.note.textContent = `${missed.map((w) => `No agent named “${w}”`).join('; ')} — nobody was notified. Pick a name from the list when you type @.`;
        }
      }
    }
    renderConv({ scroll: 'bottom' });
    scheduleRefresh();
  } catch (e) {
    if (send && send.delivered) {
      // the hub stored it (its reply.created arrived): the answer was lost, not the reply
      replyDelivered(convId, send);
      return;
    }
    if (e instanceof ApiError && e.code === 'unauthorized') return showError(e);
    if (composer && composer.convId === convId) {
      composer.error.hidden = false;
      composer.error.textContent = send && send.cancelled
        ? 'Not sent: you changed the reply while it waited for the hub. Press Enter to send it as it is now.'
        : politeMessage(e);
    }
    if (e instanceof ApiError && e.code === 'session_ended') loadConversation(convId, { keepScroll: true });
  } finally {
    if (send) send.busy = false;
    if (composer) composer.sendBtn.disabled = false;
  }
}

/**
 * The send of a reply draft: its client_id belongs to the draft, so every retry of the
 * same text (automatic or a click on Send after a failure) is the same reply for the
 * hub (PROTOCOL §6.1); edited text is another reply, with a new client_id.
 */
function replySend(convId, text) {
  const cur = S.sends.get(convId);
  if (cur && cur.text === text) return cur;
  const send = { text, clientId: uid(), busy: false, delivered: false };
  S.sends.set(convId, send);
  return send;
}

/**
 * Asks the hub who the customers in sight are (`GET /api/contacts`, an extension), once
 * per customer (`ensureContacts`), and redraws the list when some gave a name.
 */
async function lookupContacts(ids) {
  const wanted = [...new Set(ids)].filter((id) => id && !S.contacts.has(id) && !contactsUnknown.has(id)).slice(0, 500);
  if (!wanted.length || !S.token) return;
  await ensureContacts(wanted);
  if (wanted.some((id) => S.contacts.get(id)?.name?.trim())) renderList();
}

/** The customer's name as given to the widget, else "Visitor 1a2b". */
/** What a customer's avatar spells: their name's initials, else the end of their id. */
function avatarLabel(contactId) {
  const c = S.contacts.get(contactId);
  return (c && c.name && c.name.trim()) || visitorName(contactId).slice(8);
}

function customerName(contactId) {
  const c = S.contacts.get(contactId);
  return (c && c.name && c.name.trim()) || visitorName(contactId);
}

/**
 * A colleague's reply in the conversation this agent is writing a reply in: say so
 * before a second answer goes out.
 */
function colleagueReplied(convId, reply) {
  if (!reply || !reply.author || reply.author.kind !== 'agent' || reply.author.id === S.meId) return;
  if (!composer || composer.convId !== convId || !composer.reply.value.trim()) return;
  composer.error.hidden = false;
  composer.error.textContent = `${nameOf(reply.author.id)} just replied to this customer: read it before you send yours.`;
}

/**
 * The reply text changed while an earlier text was still being retried: the retries
 * stop (the agent decides what goes out), the new text waits for its own Send.
 */
function editedWhileSending(convId, text) {
  const send = S.sends.get(convId);
  if (!send || !send.busy || send.text === text) return;
  send.cancelled = true;
  S.sends.delete(convId);
}

/** A live reply.created: if it is the reply this console is sending, it was delivered. */
function replyArrived(convId, reply) {
  const send = S.sends.get(convId);
  if (!send || !reply || !reply.author || reply.author.id !== S.meId || reply.text !== send.text) return;
  send.delivered = true;
  if (!send.busy) replyDelivered(convId, send);
}

function replyDelivered(convId, send) {
  if (S.sends.get(convId) === send) S.sends.delete(convId);
  if (!composer || composer.convId !== convId) {
    const d = S.drafts.get(convId);
    if (d && d.reply.trim() === send.text) {
      S.drafts.set(convId, { ...d, reply: '' });
      keepDraftsSoon();
    }
    return;
  }
  composer.error.hidden = true;
  if (composer.reply.value.trim() === send.text) {
    composer.reply.value = '';
    saveDraft();
  }
  scheduleRefresh();
}

/**
 * Posts a reply; transient failures (the hub unreachable or restarting, 5xx, 429) are
 * retried with the same client_id (no duplicates) for as long as the reply is still
 * this console's to send, every few seconds at most: a reply typed during an outage
 * goes out once the hub is back, without the agent having to notice.
 */
async function postReply(convId, send) {
  const token = S.token;
  for (let attempt = 0; ; attempt++) {
    try {
      return await api('POST', `/api/conversations/${encodeURIComponent(convId)}/replies`, { text: send.text, client_id: send.clientId });
    } catch (e) {
      const transient = e instanceof ApiError && (e.status === 0 || e.status >= 500 || e.code === 'rate_limited');
      const ours = () => S.token === token && S.sends.get(convId) === send;
      if (!transient || send.delivered || !ours()) throw e;
      if (attempt >= 2 && composer && composer.convId === convId) {
        composer.error.hidden = false;
        composer.error.textContent = 'The hub cannot be reached right now: your reply will be sent as soon as it is back.';
      }
      await sleep(Math.min(400 * 2 ** attempt, 3000));
      if (send.delivered || !ours()) throw e;
    }
  }
}

// @mention autocomplete
function setupMentions(ta, menu) {
  const picker = setupPicker(ta, menu, {
    idPrefix: 'mention',
    find: (before) => {
      const m = before.match(/(^|\s)@([^\s@]{0,40})$/);
      if (!m) return null;
      if (!m[2]) {
        // a mention begins: a teammate added since the team was read is offered too
        refreshAgentsIfStale().then((added) => { if (added) picker.update(); });
      }
      const q = m[2].toLowerCase();
      const items = [...S.agents.values()]
        .filter((a) => a.id !== S.meId && (a.name.toLowerCase().startsWith(q) || a.name.toLowerCase().includes(q)))
        .sort((a, b) => Number(!a.name.toLowerCase().startsWith(q)) - Number(!b.name.toLowerCase().startsWith(q)) || presenceRank(a) - presenceRank(b) || a.name.localeCompare(b.name))
        .slice(0, 6);
      return { start: before.length - m[2].length - 1, items };
    },
    row: (a, active) => h('li', { class: ['mention-option', active && 'active'], dataset: { agentId: a.id } },
      avatar(a.name, a.id, 'sm'), h('span', { class: 'mention-name', text: a.name }), h('span', { class: `mention-role p-${a.presence}`, text: `${ROLE_LABEL[a.role] || a.role} · ${a.presence}` })),
    insert: (a) => `@${a.name} `,
    picked: saveDraft,
  });
}

// ---------------------------------------------------------------- timers and boot

function tick() {
  for (const el of document.querySelectorAll('[data-until]')) el.textContent = fmtLeft(el.dataset.until);
}

function tickAgo() {
  for (const el of document.querySelectorAll('[data-ago]')) el.textContent = fmtAgo(el.dataset.ago);
}

function boot() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('login-token').value.trim();
    if (!t) {
      showLogin('Please paste your agent token.');
      return;
    }
    signIn(t);
  });
  $('signout').addEventListener('click', () => signOut());
  $('list-order').addEventListener('change', (e) => {
    S.order = e.target.value === 'oldest' ? 'oldest' : 'newest';
    try {
      localStorage.setItem(ORDER_KEY, S.order);
    } catch {
      // kept for this page only
    }
    S.list = { sig: '', items: [], loading: true, error: null, limit: 50, more: false };
    renderList();
    refreshLists();
  });
  $('conv-owner').addEventListener('change', (e) => {
    S.convOwner = ['mine', 'none'].includes(e.target.value) ? e.target.value : 'all';
    try {
      localStorage.setItem(CONV_OWNER_KEY, S.convOwner);
    } catch {
      // kept for this page only
    }
    renderList();
  });
  $('conv-order').addEventListener('change', (e) => {
    S.convOrder = e.target.value === 'opened' ? 'opened' : 'activity';
    try {
      localStorage.setItem(CONV_ORDER_KEY, S.convOrder);
    } catch {
      // kept for this page only
    }
    renderList();
  });
  $('signout-nav').addEventListener('click', () => signOut());
  // Search: the results are a list like a folder's (#/search/QUERY)
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = $('search-input').value.trim();
    const err = $('search-error');
    err.hidden = queryWords(q).length > 0 || !q;
    err.textContent = 'Type a word of two letters or more.';
    if (!queryWords(q).length) return;
    S.list = { sig: '', items: [], loading: true, error: null, limit: 50, more: false };
    const target = hashFor('search', q);
    if (location.hash === target) refreshLists();
    else location.hash = target;
  });
  $('search-input').addEventListener('input', () => { $('search-error').hidden = true; });
  // "/" anywhere but in a field goes to the search box
  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    const t = e.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    if (!S.token || $('app').hidden) return;
    e.preventDefault();
    $('search-input').focus();
    $('search-input').select();
  });
  // j / k, r / n, ? (console/keys.js)
  setupShortcuts({
    active: () => !!S.token && !$('app').hidden,
    rows: () => [...document.querySelectorAll('#list a.row')],
    openRow: (a) => {
      location.hash = a.getAttribute('href');
      a.focus({ preventScroll: true });
      a.scrollIntoView({ block: 'nearest' });
    },
    // an ended session takes no reply: setMode goes to the note instead
    reply: () => !!(composer && S.conv) && (setMode('reply'), true),
    note: () => !!(composer && S.conv) && (setMode('comment'), true),
    help: () => openDialog({
      title: 'Keyboard shortcuts',
      description: SHORTCUTS.map(([k, what]) => `${k}  —  ${what}`).join('\n'),
      submit: 'OK',
      onSubmit: async () => {},
    }),
  });
  // Enter on a row opens it and moves the focus into the conversation
  $('list').addEventListener('keydown', (e) => {
    const row = e.key === 'Enter' && e.target.closest && e.target.closest('a.row');
    if (!row) return;
    focusConvOnLoad = row.dataset.conversationId;
    if (row.getAttribute('href') === location.hash && S.conv && S.conv.id === focusConvOnLoad) {
      e.preventDefault();
      focusIntoConv();
    }
  });
  $('menu-btn').addEventListener('click', () => document.body.classList.toggle('nav-open'));
  $('scrim').addEventListener('click', () => document.body.classList.remove('nav-open'));
  for (const b of $('presence').querySelectorAll('button')) b.addEventListener('click', () => setPresence(b.dataset.status));
  window.addEventListener('hashchange', () => {
    if (S.token) onRoute();
  });
  document.addEventListener('click', (e) => {
    for (const d of document.querySelectorAll('details.menu[open]')) if (!d.contains(e.target)) d.open = false;
  });
  // Escape closes an open menu (the one holding focus first) and gives focus back to its summary
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || e.defaultPrevented) return;
    const open = [...document.querySelectorAll('details.menu[open]')];
    if (!open.length) return;
    const d = open.find((x) => x.contains(document.activeElement)) || open[open.length - 1];
    e.preventDefault();
    d.open = false;
    const summary = d.querySelector(':scope > summary');
    if (summary) summary.focus();
  });
  watchToasts();
  setInterval(tick, 1000);
  setInterval(tickAgo, 30000);
  setInterval(() => refreshAgentsIfStale(55000), 60000);
  renderConn();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved, { remembered: true });
  else showLogin();
}

boot();
