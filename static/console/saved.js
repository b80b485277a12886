// Saved replies (the hub's /api/saved-replies, an extension): the team's canned answers.
// Every agent inserts them in the reply box by typing "/" and the shortcut at the start
// of a line (↑/↓, Enter or Tab, Escape), or from the "Saved replies" screen's list;
// supervisors and admins add, edit and delete them there. Placeholders are filled in as
// the text is inserted: {{customer.name}}, {{customer.first_name}}, {{agent.name}},
// {{agent.first_name}}, each with an optional fallback after "|" for a customer who
// gave no name ({{customer.first_name|there}}).

import { h, fill, setupPicker } from './dom.js';
import { ApiError, politeMessage } from './api.js';

// The list as last read, shared by the screen and the reply boxes.
const cache = { items: [], at: 0, loading: null };
const STALE_MS = 30000;

/** The saved replies, read again when older than 30 s (or when `force`). */
export async function savedReplies(api, { force = false } = {}) {
  if (!force && cache.at && Date.now() - cache.at < STALE_MS) return cache.items;
  if (!cache.loading) {
    cache.loading = api('GET', '/api/saved-replies')
      .then((d) => {
        cache.items = d.items || [];
        cache.at = Date.now();
        return cache.items;
      })
      .finally(() => { cache.loading = null; });
  }
  return cache.loading;
}

const PLACEHOLDER = /\{\{\s*(customer|agent)\.(name|first_name)\s*(?:\|([^}]*))?\}\}/g;

/** The text with its placeholders filled in (`who`: {customer, agent} names or null). */
export function fillPlaceholders(text, who) {
  return String(text).replace(PLACEHOLDER, (_, whose, part, fallback) => {
    const name = ((who && who[whose]) || '').trim();
    if (!name) return (fallback || '').trim();
    return part === 'first_name' ? name.split(/\s+/)[0] : name;
  });
}

/** Saved replies matching what follows the "/": shortcut starts first, then the rest. */
export function matchSaved(items, q) {
  const needle = q.toLowerCase();
  const score = (r) => {
    const s = r.shortcut.toLowerCase();
    if (s.startsWith(needle)) return 0;
    if (s.includes(needle)) return 1;
    if (needle && r.text.toLowerCase().includes(needle)) return 2;
    return 3;
  };
  return items
    .map((r) => [score(r), r])
    .filter(([sc]) => sc < 3)
    .sort((a, b) => a[0] - b[0] || a[1].shortcut.localeCompare(b[1].shortcut))
    .map(([, r]) => r);
}

/**
 * The picker in a reply box: "/" then letters at the start of a line list the matching
 * saved replies in `menu` (shared with the @mention list of the comment box).
 * ctx: {api, who(): {customer, agent}, onInsert()}.
 */
export function setupSavedPicker(ta, menu, { api, who, onInsert = () => {} }) {
  const picker = setupPicker(ta, menu, {
    idPrefix: 'saved',
    find: (before) => {
      const m = before.match(/(^|\n)\/([\p{L}\p{N}_-]{0,32})$/u);
      if (!m) return null;
      // read afresh when stale: a reply saved a moment ago by a supervisor shows up
      if (!cache.at || Date.now() - cache.at >= STALE_MS) savedReplies(api).then(() => picker.update()).catch(() => {});
      return { start: before.length - m[2].length - 1, items: matchSaved(cache.items, m[2]).slice(0, 6) };
    },
    row: (r, active) => h('li', { class: ['mention-option', 'saved-option', active && 'active'], dataset: { savedId: r.id, shortcut: r.shortcut } },
      h('span', { class: 'saved-shortcut', text: `/${r.shortcut}` }), h('span', { class: 'saved-text', text: r.text.replace(/\s+/g, ' ') })),
    insert: (r) => fillPlaceholders(r.text, who()),
    picked: onInsert,
  });
}

function errorText(err) {
  if (err instanceof ApiError && [400, 404, 409, 413].includes(err.status) && err.message) return err.message;
  return politeMessage(err);
}

/**
 * The Saved replies screen. canEdit: supervisors and admins; confirm: the console's
 * dialog. Returns {reload}.
 */
export function mountSavedReplies(root, { api, canEdit = false, confirm = async () => true, onError = () => {} }) {
  const V = { items: [], loading: true, error: null, editing: null, formError: null, busy: false, filter: '' };

  async function load() {
    try {
      V.items = await savedReplies(api, { force: true });
      V.error = null;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.error = politeMessage(e);
    }
    V.loading = false;
    render();
  }

  async function save(draft) {
    V.busy = true;
    V.formError = null;
    render();
    try {
      const body = { shortcut: draft.shortcut.trim(), text: draft.text };
      if (draft.id) await api('PUT', `/api/saved-replies/${encodeURIComponent(draft.id)}`, body);
      else await api('POST', '/api/saved-replies', body);
      V.editing = null;
      V.busy = false;
      await load();
      root.querySelector('#saved-add')?.focus();
    } catch (e) {
      V.busy = false;
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.formError = errorText(e);
      render();
    }
  }

  async function remove(r) {
    const ok = await confirm({
      title: `Delete /${r.shortcut}?`,
      description: 'Nobody will be able to insert it any more. Replies already sent with it are not changed.',
      submit: 'Delete',
      danger: true,
    });
    if (!ok) return;
    try {
      await api('DELETE', `/api/saved-replies/${encodeURIComponent(r.id)}`);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      // (already gone: the list read again says so)
      if (!(e instanceof ApiError && e.status === 404)) V.error = errorText(e);
    }
    await load();
  }

  function form() {
    const d = V.editing;
    const shortcut = h('input', { id: 'saved-shortcut', name: 'shortcut', type: 'text', maxlength: 33, placeholder: 'e.g. refund', autocomplete: 'off', spellcheck: 'false' });
    shortcut.value = d.shortcut;
    shortcut.addEventListener('input', () => { d.shortcut = shortcut.value; });
    const text = h('textarea', { id: 'saved-text', name: 'text', rows: 5, placeholder: 'Hello {{customer.first_name|there}}, …' });
    text.value = d.text;
    text.addEventListener('input', () => { d.text = text.value; });
    const f = h('form', { id: 'saved-form', class: 'asst-form', novalidate: true },
      h('h2', { text: d.id ? `Edit /${d.was}` : 'New saved reply' }),
      h('div', { class: 'field' }, h('label', { for: 'saved-shortcut', text: 'Shortcut' }), shortcut,
        h('span', { class: 'hint', text: 'Letters, digits, - or _; agents type / and the shortcut at the start of a line in the reply box.' })),
      h('div', { class: 'field' }, h('label', { for: 'saved-text', text: 'Text' }), text,
        h('span', { class: 'hint', text: 'Filled in as it is inserted: {{customer.name}}, {{customer.first_name}}, {{agent.name}}, {{agent.first_name}}; after | what to write when the customer gave no name.' })),
      V.formError ? h('p', { class: 'form-error', role: 'alert', text: V.formError }) : null,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn ghost', dataset: { action: 'cancel' }, text: 'Cancel', on: { click: () => { V.editing = null; V.formError = null; render(); } } }),
        h('button', { type: 'submit', class: 'btn primary', dataset: { action: 'save' }, text: d.id ? 'Save' : 'Create', disabled: V.busy })));
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!V.busy) save(d);
    });
    return f;
  }

  function listView() {
    if (V.loading && !V.items.length) return h('p', { class: 'list-empty', text: 'Loading…' });
    if (V.error && !V.items.length) return h('p', { class: 'list-empty error', text: V.error });
    if (!V.items.length) {
      return h('p', { class: 'list-empty', text: canEdit ? 'No saved reply yet. Add the answers your team writes again and again.' : 'No saved reply yet. A supervisor or an admin adds them here.' });
    }
    const shown = V.filter ? matchSaved(V.items, V.filter) : V.items;
    return h('ul', { id: 'saved-list', class: 'asst-list' }, shown.map((r) => h('li', { class: 'asst-item saved-item', dataset: { id: r.id, shortcut: r.shortcut } },
      h('div', { class: 'asst-top' },
        h('span', { class: 'asst-name saved-shortcut', text: `/${r.shortcut}` }),
        canEdit ? h('button', { type: 'button', class: 'btn small ghost', dataset: { action: 'edit' }, text: 'Edit', on: { click: () => { V.editing = { id: r.id, was: r.shortcut, shortcut: r.shortcut, text: r.text }; V.formError = null; render(); root.querySelector('#saved-text')?.focus(); } } }) : null,
        canEdit ? h('button', { type: 'button', class: 'btn small ghost danger', dataset: { action: 'delete' }, text: 'Delete', on: { click: () => remove(r) } }) : null),
      h('p', { class: 'saved-body', dir: 'auto', text: r.text }))));
  }

  function render() {
    const filter = h('input', { id: 'saved-filter', type: 'search', placeholder: 'Filter', 'aria-label': 'Filter saved replies', value: V.filter });
    filter.addEventListener('input', () => {
      V.filter = filter.value.trim().replace(/^\//, '');
      const old = root.querySelector('#saved-list, .admin-body > .list-empty');
      if (old) old.replaceWith(listView());
    });
    const focused = document.activeElement && root.contains(document.activeElement) ? document.activeElement.id : null;
    fill(root,
      h('header', { class: 'admin-head' },
        h('div', {},
          h('h1', { id: 'admin-title', text: 'Saved replies' }),
          h('p', { class: 'muted', text: 'The team’s ready answers. In the reply box, type / and a shortcut at the start of a line to insert one.' })),
        canEdit ? h('button', {
          id: 'saved-add', type: 'button', class: 'btn primary', text: 'Add saved reply', disabled: !!V.editing,
          on: { click: () => { V.editing = { id: null, shortcut: '', text: '' }; V.formError = null; render(); root.querySelector('#saved-shortcut')?.focus(); } },
        }) : null),
      h('div', { class: 'admin-body' },
        V.error && V.items.length ? h('p', { class: 'form-error', role: 'alert', text: V.error }) : null,
        V.editing ? form() : null,
        V.items.length > 5 ? filter : null,
        listView()));
    if (focused && root.querySelector(`#${CSS.escape(focused)}`)) root.querySelector(`#${CSS.escape(focused)}`).focus();
  }

  render();
  load();
  return { reload: load };
}
