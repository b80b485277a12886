// The Agents screen (admins only, PROTOCOL §6): the team with role and presence, and
// adding an agent (name, role). The new agent's token is shown once, with a copy button:
// the hub keeps only its hash, so it can never be shown again. A lost token is replaced
// with "New token…" (the hub's POST /api/agents/{id}/token, an extension): the old one
// stops working at once. PROTOCOL defines no way to edit or delete an agent.
// The hub's own error message (§3, e.g. a name already taken) is shown inline.
// Automation (extensions, GET/PATCH /api/automation): a switch for automatic assignment
// and each agent's capacity, the most conversations the hub gives them at once
// (PATCH /api/agents/{id}; empty: no limit, 0: never) and the channels it gives them
// (empty: every channel); whether an agent who goes offline
// hands back what they hold; and when idle conversations close.

import { h, fill, avatar } from './dom.js';
import { ApiError, politeMessage } from './api.js';
import { ROLE_LABEL } from './words.js';

const ROLES = ['agent', 'supervisor', 'admin'];
const ROLE_HINT = {
  agent: 'answers customers',
  supervisor: 'also answers help requests and assigns to others',
  admin: 'also manages agents and assistants',
};

function errorText(err) {
  if (err instanceof ApiError && (err.status === 400 || err.status === 409) && err.message) return err.message;
  return politeMessage(err);
}

const RANK = { online: 0, away: 1 };

/** The idle periods offered for closing conversations (seconds; null: never). */
const CLOSE_AFTER = [
  [null, 'never'],
  [3600, 'after 1 hour'],
  [4 * 3600, 'after 4 hours'],
  [12 * 3600, 'after 12 hours'],
  [86400, 'after 1 day'],
  [2 * 86400, 'after 2 days'],
  [7 * 86400, 'after 7 days'],
];

/** "2 days", "90 minutes": a period in its largest whole unit (as the hub's notes say it). */
function spanWords(seconds) {
  const [n, unit] = seconds % 86400 === 0 ? [seconds / 86400, 'day'] : seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/**
 * Mounts the screen in `root`. api: the console's request function; meId(): the signed-in
 * agent's id; onChange(items): called with the agents after every load; onError(err): for
 * errors that are not about the form (e.g. the session expired).
 * Returns {reload, presence(agentId, presence)} (live presence changes).
 */
export function mountAgents(root, { api, meId = () => null, onChange = () => {}, onError = () => {}, confirm = async () => true }) {
  const V = {
    items: [], loading: true, error: null, adding: false, formError: null, created: null, busy: false,
    automation: null, automationError: null,
    // each agent field's inline editor (capacity, channels): null, or {id, draft, error}
    edit: { capacity: null, channels: null },
  };
  const draft = { name: '', role: 'agent', capacity: '' };

  async function loadAutomation() {
    try {
      V.automation = await api('GET', '/api/automation');
      V.automationError = null;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.automationError = politeMessage(e);
    }
    renderAutomation();
  }

  async function setAutomation(change) {
    try {
      V.automation = await api('PATCH', '/api/automation', change);
      V.automationError = null;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.automationError = errorText(e);
    }
    renderAutomation();
  }

  /** What an editor's draft asks the hub for: a PATCH body, or an error to show. */
  function capacityBody(draft) {
    const text = draft.trim();
    const capacity = text === '' ? null : Number(text);
    if (capacity !== null && !(Number.isInteger(capacity) && capacity >= 0)) {
      return { error: 'A capacity is a whole number (0 or more), or empty for no limit.' };
    }
    return { body: { capacity } };
  }

  function channelsBody(draft) {
    const names = draft.split(',').map((c) => c.trim()).filter((c) => c !== '');
    return { body: { channels: names.length ? names : null } };
  }

  /** Saves `field`'s editor of agent `a` (PATCH /api/agents/{id}): the agent takes the
   * hub's answer and the editor closes; a refusal shows in the editor, kept open. */
  async function saveField(a, field) {
    const ed = V.edit[field];
    const { body, error } = EDITORS[field].body(ed.draft);
    if (error) {
      ed.error = error;
      renderList();
      return;
    }
    try {
      const updated = await api('PATCH', `/api/agents/${encodeURIComponent(a.id)}`, body);
      a.capacity = updated.capacity;
      a.channels = updated.channels;
      V.edit[field] = null;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      ed.error = errorText(e);
    }
    renderList();
  }

  async function load({ listOnly = false } = {}) {
    try {
      const data = await api('GET', '/api/agents?workload=true'); // (the team list shows it)
      V.items = data.items || [];
      V.error = null;
      onChange(V.items);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.error = politeMessage(e);
    }
    V.loading = false;
    if (listOnly) renderList();
    else render();
  }

  async function create() {
    V.busy = true;
    V.formError = null;
    render();
    try {
      const body = { name: draft.name.trim(), role: draft.role };
      if (draft.capacity.trim() !== '') body.capacity = Number(draft.capacity);
      const a = await api('POST', '/api/agents', body);
      V.created = a; // {id, name, role, token}: shown once, kept nowhere else
      V.adding = false;
      draft.name = '';
      draft.role = 'agent';
      draft.capacity = '';
      V.busy = false;
      await load();
    } catch (e) {
      V.busy = false;
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.formError = errorText(e);
      render();
    }
  }

  async function replaceToken(a) {
    const ok = await confirm({
      title: `Give ${a.name} a new token?`,
      description: `${a.name}’s current token stops working at once, and their open consoles are signed out. The new token is shown once.`,
      submit: 'New token',
      danger: true,
    });
    if (!ok) return;
    try {
      V.created = { ...(await api('POST', `/api/agents/${encodeURIComponent(a.id)}/token`)), renewed: true };
      V.adding = false;
      render();
      root.querySelector('#agent-token')?.focus();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.error = errorText(e);
      renderList();
    }
  }

  // ------------------------------------------------------------ rendering

  function render() {
    const focused = document.activeElement && root.contains(document.activeElement) ? document.activeElement.id : null;
    fill(root,
      h('header', { class: 'admin-head' },
        h('div', {},
          h('h1', { id: 'admin-title', text: 'Agents' }),
          h('p', { class: 'muted', text: 'Your team. Each agent signs in to the console with their own token.' })),
        h('button', {
          // while a new token is shown, adding another would have to drop it (it is shown
          // once and cannot be issued again): the admin first confirms it was copied
          id: 'agent-add', type: 'button', class: 'btn primary', text: 'Add agent', disabled: V.adding || !!V.created,
          title: V.created ? 'First copy the new token, then click "I have copied it"' : null,
          on: { click: () => { if (V.created) return; V.adding = true; V.formError = null; render(); root.querySelector('#agent-name')?.focus(); } },
        })),
      h('div', { class: 'admin-body' },
        automationView(),
        V.created ? tokenNotice(V.created) : null,
        V.adding ? form() : null,
        listView()));
    if (focused && root.querySelector(`#${CSS.escape(focused)}`)) root.querySelector(`#${CSS.escape(focused)}`).focus();
  }

  function automationView() {
    const on = !!(V.automation && V.automation.auto_assign);
    const box = h('input', { id: 'routing-auto', type: 'checkbox', disabled: !V.automation });
    box.checked = on;
    box.addEventListener('change', () => setAutomation({ auto_assign: box.checked }));
    const handBack = !!(V.automation && V.automation.reassign_offline);
    const back = h('input', { id: 'reassign-offline', type: 'checkbox', disabled: !V.automation, 'aria-describedby': 'reassign-offline-hint' });
    back.checked = handBack;
    back.addEventListener('change', () => setAutomation({ reassign_offline: back.checked }));
    const after = V.automation ? V.automation.auto_close_seconds : null;
    const choices = CLOSE_AFTER.some(([s]) => s === after) ? CLOSE_AFTER : [...CLOSE_AFTER, [after, `after ${spanWords(after)}`]];
    const close = h('select', { id: 'auto-close', disabled: !V.automation, 'aria-describedby': 'auto-close-hint' },
      choices.map(([s, label]) => h('option', { value: s === null ? '' : String(s), text: label })));
    close.value = after === null || after === undefined ? '' : String(after);
    close.addEventListener('change', () => setAutomation({ auto_close_seconds: close.value === '' ? null : Number(close.value) }));
    return h('section', { id: 'routing', class: 'routing-panel', role: 'region', 'aria-label': 'Automation' },
      h('h2', { class: 'routing-title', text: 'Automation' }),
      h('label', { class: 'routing-switch', for: 'routing-auto' }, box,
        h('span', { text: 'Assign pending messages automatically' })),
      h('p', { class: 'muted routing-hint', text: on
        ? 'The hub gives each waiting customer message to an online agent: the one already handling the conversation, else its owner, else whoever has the fewest conversations, within their capacity and their channels. Away agents get nothing; a message handed back goes to someone else.'
        : 'Off: messages wait in Pending until an agent takes them or a supervisor assigns them.' }),
      h('label', { class: 'routing-switch', for: 'reassign-offline' }, back,
        h('span', { text: 'Hand back the messages of agents who go offline' })),
      h('p', { id: 'reassign-offline-hint', class: 'muted routing-hint', text: handBack
        ? `When an agent goes offline (their last console closed, or they did not come back after a restart), the messages in their Mine go back to Pending${on ? ', and to someone online' : ''}. Messages on hold stay theirs until the hold ends, as do those of conversations whose session ended, and those a supervisor gives them while they are offline.`
        : 'Off: an agent who goes offline keeps what they hold until they come back or a supervisor reassigns it.' }),
      h('div', { class: 'routing-close' },
        h('label', { for: 'auto-close', text: 'Close idle conversations' }), close),
      h('p', { id: 'auto-close-hint', class: 'muted routing-hint', text: after
        ? `An open conversation with nothing waiting for the team (every message answered or archived) is closed by the hub once nobody has written in it for ${spanWords(after)}. The customer's next message reopens it.`
        : 'Off: conversations stay open until someone closes them.' }),
      V.automationError ? h('p', { class: 'form-error', role: 'alert', text: V.automationError }) : null);
  }

  function renderAutomation() {
    const old = root.querySelector('#routing');
    if (old) old.replaceWith(automationView());
  }

  function capacityText(a) {
    // (an admin with no capacity is not given conversations: the hub's rule)
    if ((a.capacity === null || a.capacity === undefined) && a.role === 'admin') return 'Not assigned automatically';
    if (a.capacity === null || a.capacity === undefined) return 'No limit';
    if (a.capacity === 0) return 'Not assigned automatically';
    return `Up to ${a.capacity} conversation${a.capacity === 1 ? '' : 's'}`;
  }

  function channelsText(a) {
    return a.channels && a.channels.length ? `Channels: ${a.channels.join(', ')}` : 'All channels';
  }

  /** The agent fields edited in place: what each shows, its button, its input. */
  const EDITORS = {
    capacity: {
      text: capacityText, title: 'The most conversations automatic assignment gives them at once',
      button: 'Capacity…', aria: 'Capacity', draft: (a) => a.capacity ?? '', body: capacityBody,
      input: { type: 'number', min: '0', step: '1', placeholder: 'no limit', class: 'capacity-input' },
    },
    channels: {
      text: channelsText, title: 'The channels whose customers automatic assignment gives them',
      button: 'Channels…', aria: 'Channels', draft: (a) => (a.channels || []).join(', '), body: channelsBody,
      input: { type: 'text', placeholder: 'all channels (or e.g. web, fr)', class: 'channels-input', autocomplete: 'off' },
    },
  };

  /** `field` of agent `a`: its value and a button, or its editor while open. */
  function fieldView(a, field) {
    const spec = EDITORS[field];
    const inputId = `agent-${field}-input`;
    const close = () => { V.edit[field] = null; renderList(); };
    const ed = V.edit[field];
    if (!ed || ed.id !== a.id) {
      return h('span', { class: `agent-${field}` },
        h('span', { class: 'muted', text: spec.text(a), title: spec.title }),
        h('button', {
          type: 'button', class: 'btn small ghost', dataset: { action: field }, text: spec.button,
          on: { click: () => { V.edit[field] = { id: a.id, draft: spec.draft(a), error: null }; renderList(); root.querySelector(`#${inputId}`)?.focus(); } },
        }));
    }
    const input = h('input', { id: inputId, 'aria-label': `${spec.aria} of ${a.name}`, ...spec.input });
    input.value = ed.draft;
    input.addEventListener('input', () => { ed.draft = input.value; });
    const f = h('form', { class: `agent-${field} capacity-form`, novalidate: true },
      input,
      h('button', { type: 'submit', class: 'btn small primary', dataset: { action: `${field}-save` }, text: 'Save' }),
      h('button', { type: 'button', class: 'btn small ghost', text: 'Cancel', on: { click: close } }),
      ed.error ? h('span', { class: 'form-error', role: 'alert', text: ed.error }) : null);
    f.addEventListener('submit', (e) => { e.preventDefault(); saveField(a, field); });
    input.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); close(); } });
    return f;
  }

  function tokenNotice(a) {
    const token = h('input', { id: 'agent-token', class: 'token-value', type: 'text', readonly: true, value: a.token, 'aria-label': `Token of ${a.name}`, spellcheck: 'false' });
    token.addEventListener('focus', () => token.select());
    const status = h('span', { class: 'copy-status', role: 'status' });
    const copy = h('button', {
      id: 'agent-token-copy', type: 'button', class: 'btn small', text: 'Copy',
      on: {
        click: async () => {
          try {
            await navigator.clipboard.writeText(a.token);
            status.textContent = 'Copied.';
          } catch {
            token.focus();
            token.select();
            status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
          }
        },
      },
    });
    return h('section', { id: 'agent-created', class: 'token-notice', role: 'region', 'aria-label': 'New agent token' },
      h('h2', { text: a.renewed ? `${a.name} has a new token` : `${a.name} was added as ${(ROLE_LABEL[a.role] || a.role).toLowerCase()}` }),
      h('p', { class: 'token-warning', text: `Copy this token now and give it to them: it signs them in to the console${a.renewed ? ' (the old one no longer does)' : ''}. It will not be shown again.` }),
      h('div', { class: 'token-row' }, token, copy, status),
      h('div', { class: 'dialog-actions' },
        h('button', { id: 'agent-token-done', type: 'button', class: 'btn', text: 'I have copied it', on: { click: () => { V.created = null; render(); root.querySelector('#agent-add')?.focus(); } } })));
  }

  function form() {
    const name = h('input', { id: 'agent-name', name: 'name', type: 'text', placeholder: 'e.g. Camille Dupont', autocomplete: 'off' });
    name.value = draft.name;
    name.addEventListener('input', () => { draft.name = name.value; });
    const role = h('select', { id: 'agent-role', name: 'role' }, ROLES.map((r) => h('option', { value: r, text: `${ROLE_LABEL[r]} — ${ROLE_HINT[r]}` })));
    role.value = draft.role;
    role.addEventListener('change', () => { draft.role = role.value; });
    const capacity = h('input', { id: 'agent-capacity', name: 'capacity', type: 'number', min: '0', step: '1', placeholder: 'no limit' });
    capacity.value = draft.capacity;
    capacity.addEventListener('input', () => { draft.capacity = capacity.value; });
    const f = h('form', { id: 'agent-form', class: 'asst-form', novalidate: true },
      h('h2', { text: 'New agent' }),
      h('div', { class: 'field' }, h('label', { for: 'agent-name', text: 'Name' }), name, h('span', { class: 'hint', text: 'Names are unique (any case); teammates @mention each other by name.' })),
      h('div', { class: 'field' }, h('label', { for: 'agent-role', text: 'Role' }), role),
      h('div', { class: 'field' }, h('label', { for: 'agent-capacity', text: 'Capacity (optional)' }), capacity,
        h('span', { class: 'hint', text: 'The most conversations automatic assignment gives them at once; empty for no limit, 0 for never.' })),
      V.formError ? h('p', { class: 'form-error', role: 'alert', text: V.formError }) : null,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn ghost', dataset: { action: 'cancel' }, text: 'Cancel', on: { click: () => { V.adding = false; V.formError = null; render(); } } }),
        h('button', { type: 'submit', class: 'btn primary', dataset: { action: 'save' }, text: 'Create agent', disabled: V.busy })));
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!V.busy) create();
    });
    return f;
  }

  function listView() {
    if (V.loading && !V.items.length) return h('p', { class: 'list-empty', text: 'Loading…' });
    if (V.error && !V.items.length) return h('p', { class: 'list-empty error', text: V.error });
    const items = [...V.items].sort((a, b) => (RANK[a.presence] ?? 2) - (RANK[b.presence] ?? 2) || a.name.localeCompare(b.name));
    return h('ul', { id: 'agents-list', class: 'asst-list' }, items.map((a) => h('li', { class: 'asst-item agent-item', dataset: { id: a.id, role: a.role, presence: a.presence } },
      h('div', { class: 'asst-top' },
        h('span', { class: 'avatar-wrap' }, avatar(a.name, a.id, 'sm'), h('span', { class: `pdot p-${a.presence}`, 'aria-hidden': 'true' })),
        h('span', { class: 'asst-name agent-name', text: a.id === meId() ? `${a.name} (you)` : a.name }),
        h('span', { class: 'badge agent-role', text: ROLE_LABEL[a.role] || a.role }),
        h('span', { class: `agent-presence team-presence p-${a.presence}`, text: a.presence }),
        fieldView(a, 'capacity'),
        fieldView(a, 'channels'),
        h('button', {
          type: 'button', class: 'btn small ghost', dataset: { action: 'new-token' }, text: 'New token…',
          // (one's own: this console would be signed out before the new token showed)
          disabled: !!V.created || a.id === meId(),
          title: a.id === meId() ? 'Another admin can give you a new token' : V.created ? 'First copy the token shown above' : `Replace ${a.name}’s token (a lost one)`,
          on: { click: () => replaceToken(a) },
        })))));
  }

  /**
   * Redraws the list only: a live change (presence, an agent added elsewhere) must not
   * rebuild the form being typed into (caret, open role dropdown) nor the token notice.
   */
  function renderList() {
    const active = document.activeElement;
    const editing = active && Object.keys(EDITORS).map((f) => `agent-${f}-input`).includes(active.id) ? active.id : null;
    const old = root.querySelector('#agents-list, .admin-body > .list-empty');
    if (old) old.replaceWith(listView());
    else render();
    if (editing) root.querySelector(`#${editing}`)?.focus();
  }

  function presence(id, p) {
    const a = V.items.find((x) => x.id === id);
    if (!a) {
      load({ listOnly: true });
      return;
    }
    a.presence = p;
    renderList();
  }

  /** Another admin changed an agent's capacity or channels (the hub's `agent` signal). */
  function agentChanged(updated) {
    const a = V.items.find((x) => x.id === updated.id);
    if (!a) {
      load({ listOnly: true });
      return;
    }
    a.capacity = updated.capacity;
    a.channels = updated.channels;
    renderList();
  }

  /** The automation settings changed (the hub's `automation` signal). */
  function automationChanged(settings) {
    V.automation = settings;
    V.automationError = null;
    renderAutomation();
  }

  render();
  load();
  loadAutomation();
  return { reload: load, presence, agentChanged, automationChanged };
}
