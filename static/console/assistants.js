// The Assistants screen (admins only, PROTOCOL §6.4): the bots, their status and
// channels; add, edit (PUT replaces the definition), publish to channels, unpublish,
// delete (an extension). The hub's own error message (§3) is shown inline next to what
// failed. Every change names the version it was made from (If-Match, from the list's
// `etags=true`): when another admin changed the assistant meanwhile the hub answers 412,
// and the screen says so, shows their version and keeps this admin's edit to retry.

import { h, fill } from './dom.js';
import { ApiError, politeMessage } from './api.js';

const STATUS_TEXT = { draft: 'Draft', published: 'Published' };

/** "a, b ,, c" → ["a", "b", "c"]. */
function splitList(text) {
  return String(text || '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** The text to show for a failed request: the hub's own message on a 400/409. */
function errorText(err) {
  if (err instanceof ApiError && (err.status === 400 || err.status === 409) && err.message) return err.message;
  return politeMessage(err);
}

/**
 * Mounts the screen in `root`. api: the console's request function; onChange(items):
 * called with the assistants after every load (the console keeps the bots' names);
 * onError(err): for errors that are not about a form (e.g. the session expired);
 * confirm({title, description, submit, danger}): resolves true when the admin goes ahead.
 */
export function mountAssistants(root, { api, onChange = () => {}, onError = () => {}, confirm = async (o) => window.confirm(o.description) }) {
  const V = { items: [], loading: true, error: null, editing: null, editTag: null, formError: null, formConflict: false, notice: null, rowErrors: new Map() };
  const channelsTyped = new Map(); // assistant id → the channels typed in its Publish field, kept until published
  let draft = null; // the form's values while it is open

  async function load() {
    try {
      // with each one's version (an extension), which every change sends back as If-Match
      const data = await api('GET', '/api/assistants?etags=true');
      V.items = data.items || [];
      V.error = null;
      onChange(V.items);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      V.error = politeMessage(e);
    }
    V.loading = false;
    render();
  }

  /** The If-Match header for a change made from the version `tag` (none: unconditional). */
  function ifMatch(tag) {
    return tag ? { headers: { 'If-Match': tag } } : {};
  }

  function isStale(e) {
    return e instanceof ApiError && e.status === 412;
  }

  /** What an assistant now is, in a line: its name, status and channels, its summary. */
  function describe(a) {
    const where = (a.channels || []).length ? `published on ${a.channels.join(', ')}` : 'a draft';
    return `“${a.name}”, ${where}: ${summary(a)}`;
  }

  function emptyDraft() {
    return { name: '', rules: [{ match: '', reply: '' }], transfer_keywords: '', transfer_reply: '', spam_keywords: '', default_reply: '' };
  }

  function draftOf(a) {
    return {
      name: a.name || '',
      rules: (a.rules || []).map((r) => ({ match: r.match || '', reply: r.reply || '' })),
      transfer_keywords: (a.transfer_keywords || []).join(', '),
      transfer_reply: a.transfer_reply || '',
      spam_keywords: (a.spam_keywords || []).join(', '),
      default_reply: a.default_reply || '',
    };
  }

  /** The §6.4 definition body; empty optional fields are left out (a PUT clears them). */
  function bodyOf(d) {
    const body = {
      name: d.name.trim(),
      rules: d.rules.filter((r) => r.match.trim() || r.reply.trim()).map((r) => ({ match: r.match, reply: r.reply })),
      transfer_keywords: splitList(d.transfer_keywords),
      spam_keywords: splitList(d.spam_keywords),
    };
    if (d.transfer_reply.trim()) body.transfer_reply = d.transfer_reply;
    if (d.default_reply.trim()) body.default_reply = d.default_reply;
    return body;
  }

  function edit(target) {
    V.editing = target; // 'new' or an assistant id
    V.formError = null;
    const a = target === 'new' ? null : V.items.find((x) => x.id === target);
    V.editTag = a ? a.etag || null : null; // the version this edit starts from
    V.formConflict = false;
    draft = a ? draftOf(a) : emptyDraft();
    if (!draft.rules.length) draft.rules.push({ match: '', reply: '' });
    render();
    const first = root.querySelector('#assistant-name');
    if (first) first.focus();
  }

  function closeForm() {
    V.editing = null;
    V.editTag = null;
    V.formError = null;
    V.formConflict = false;
    draft = null;
    render();
  }

  /**
   * Another admin changed (or deleted) the assistant being edited since the form opened
   * (412): read the list again, keep this admin's edit in the form, say what the
   * assistant now is; saving again replaces it knowingly (from the version now shown).
   */
  async function staleEdit() {
    const id = V.editing;
    await load();
    const now = V.items.find((x) => x.id === id);
    V.formConflict = true;
    if (!now) {
      // deleted meanwhile: the form stays, as a new assistant with these values
      V.editing = 'new';
      V.editTag = null;
      V.formError = 'Someone else deleted this assistant while you were editing it. Your changes are still here: create it again with them, or cancel.';
    } else {
      V.editTag = now.etag || null;
      V.formError = `Someone else changed this assistant while you were editing it. It now is ${describe(now)}. Your changes are still here: save again to replace theirs, or cancel to keep theirs.`;
    }
    render();
    root.querySelector('#assistant-form .form-error')?.focus();
  }

  /** A row's change was refused as made from an old version (412), or its assistant is gone (404). */
  async function staleRow(id, name, err) {
    await load();
    if (V.items.some((x) => x.id === id)) {
      V.rowErrors.set(id, 'Someone else changed this assistant in the meantime: it is shown as it now is. Check it, then try again.');
    } else {
      V.notice = `Someone else deleted ${name} in the meantime.`;
    }
    render();
    return err;
  }

  async function save(button) {
    const body = bodyOf(draft);
    // a default reply answers everything a rule does not: without a transfer keyword the
    // customers of its channels never reach a person
    if (body.default_reply && !body.transfer_keywords.length) {
      const go = await confirm({
        title: 'Customers could never reach a person',
        description: 'This assistant has a default reply and no transfer keyword: every message gets an automatic answer, so a customer on its channels can never reach your team. Add a transfer keyword (e.g. “agent”), or save it as it is.',
        submit: 'Save anyway',
        danger: true,
      });
      if (!go) return;
    }
    button.disabled = true;
    try {
      if (V.editing === 'new') await api('POST', '/api/assistants', body);
      else await api('PUT', `/api/assistants/${encodeURIComponent(V.editing)}`, body, ifMatch(V.editTag));
      V.editing = null;
      V.editTag = null;
      draft = null;
      V.formError = null;
      V.formConflict = false;
      V.notice = null;
      await load();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      if (isStale(e) || (e instanceof ApiError && e.status === 404 && V.editing !== 'new')) return staleEdit();
      V.formConflict = false;
      V.formError = errorText(e);
      button.disabled = false;
      render();
    }
  }

  async function rowAction(id, path, body) {
    const a = V.items.find((x) => x.id === id);
    try {
      await api('POST', `/api/assistants/${encodeURIComponent(id)}/${path}`, body, ifMatch(a && a.etag));
      V.rowErrors.delete(id);
      V.notice = null;
      if (path === 'publish') channelsTyped.delete(id);
      await load();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      if (isStale(e) || (e instanceof ApiError && e.status === 404)) return void staleRow(id, a ? a.name : 'this assistant', e);
      V.rowErrors.set(id, errorText(e));
      render();
      // back to the field that failed, the typed channels still in it
      if (path === 'publish') root.querySelector(`.asst-item[data-id="${CSS.escape(id)}"] .asst-channels-input`)?.focus();
    }
  }

  /** Delete (an extension of the hub's), after a confirmation that says what it ends. */
  async function remove(a) {
    const chans = a.channels || [];
    const go = await confirm({
      title: `Delete ${a.name}?`,
      description: (chans.length
        ? `${a.name} answers customers on ${chans.join(', ')}. Deleting it leaves ${chans.length > 1 ? 'these channels' : 'this channel'} without an assistant: new messages there wait for your team. `
        : '')
        + 'Its earlier replies stay in their conversations. This cannot be undone.',
      submit: 'Delete',
      danger: true,
    });
    if (!go) return;
    try {
      await api('DELETE', `/api/assistants/${encodeURIComponent(a.id)}`, undefined, ifMatch(a.etag));
      V.rowErrors.delete(a.id);
      channelsTyped.delete(a.id);
      if (V.editing === a.id) closeForm();
      V.notice = null;
      await load();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') return onError(e);
      if (isStale(e) || (e instanceof ApiError && e.status === 404)) return void staleRow(a.id, a.name, e);
      V.rowErrors.set(a.id, errorText(e));
      render();
    }
  }

  // ------------------------------------------------------------ rendering

  function render() {
    const add = h('button', { id: 'assistant-add', type: 'button', class: 'btn primary', text: 'Add assistant', disabled: V.editing === 'new', on: { click: () => edit('new') } });
    fill(root,
      h('header', { class: 'admin-head' },
        h('div', {},
          h('h1', { id: 'admin-title', text: 'Assistants' }),
          h('p', { class: 'muted', text: 'Bots that answer customers on a channel. Each channel has at most one published assistant: publishing one takes the channel over from another.' })),
        add),
      h('div', { class: 'admin-body' },
        V.notice ? h('p', { class: 'form-error', id: 'assistants-notice', role: 'alert', text: V.notice }) : null,
        V.editing === 'new' ? form() : null,
        listView()));
  }

  function listView() {
    if (V.loading && !V.items.length) return h('p', { class: 'list-empty', text: 'Loading…' });
    if (V.error && !V.items.length) return h('p', { class: 'list-empty error', text: V.error });
    if (!V.items.length) return h('p', { class: 'list-empty', id: 'assistants-empty', text: 'No assistant yet. Add one to answer customers automatically.' });
    return h('ul', { id: 'assistants-list', class: 'asst-list' }, V.items.map((a) => (V.editing === a.id ? h('li', { class: 'asst-item editing', dataset: { id: a.id } }, form()) : row(a))));
  }

  function row(a) {
    const err = V.rowErrors.get(a.id);
    const channels = h('input', { type: 'text', class: 'asst-channels-input', name: 'channels', placeholder: 'Channels, comma-separated (e.g. web)', 'aria-label': `Channels to publish ${a.name} on` });
    // most assistants answer on the widget's channel: "web" is offered unless it has it already
    channels.value = channelsTyped.has(a.id) ? channelsTyped.get(a.id) : ((a.channels || []).includes('web') ? '' : 'web');
    channels.addEventListener('input', () => { channelsTyped.set(a.id, channels.value); });
    const publish = h('form', { class: 'asst-publish', novalidate: true },
      channels,
      h('button', { type: 'submit', class: 'btn small', dataset: { action: 'publish' }, text: 'Publish' }));
    publish.addEventListener('submit', async (e) => {
      e.preventDefault();
      const wanted = splitList(channels.value);
      // publishing takes each channel from the assistant that has it (§6.4): ask first
      const taken = wanted.map((ch) => [ch, V.items.find((o) => o.id !== a.id && (o.channels || []).includes(ch))]).filter(([, o]) => o);
      if (taken.length) {
        const what = taken.map(([ch, o]) => `“${ch}” from ${o.name}`).join(', ');
        const go = await confirm({
          title: `Take over ${taken.length > 1 ? 'these channels' : 'this channel'}?`,
          description: `Publishing ${a.name} takes ${what}: ${taken.length > 1 ? 'they' : 'it'} will answer there no more.`,
          submit: 'Publish and take over',
          danger: true,
        });
        if (!go) return;
      }
      rowAction(a.id, 'publish', { channels: wanted });
    });
    const chips = (a.channels || []).map((ch) => h('span', { class: 'chip', dataset: { channel: ch } },
      h('span', { class: 'chip-text', text: ch }),
      h('button', {
        type: 'button', class: 'chip-remove', dataset: { action: 'unpublish-channel' }, 'aria-label': `Unpublish from ${ch}`, title: `Unpublish from ${ch}`, text: '×',
        on: { click: () => rowAction(a.id, 'unpublish', { channels: [ch] }) },
      })));
    return h('li', { class: 'asst-item', dataset: { id: a.id, status: a.status } },
      h('div', { class: 'asst-top' },
        h('span', { class: 'asst-name', text: a.name }),
        h('span', { class: ['badge', 'asst-status', a.status === 'published' ? 'a-published' : 'a-draft'], text: STATUS_TEXT[a.status] || a.status }),
        h('span', { class: 'asst-channels' }, chips.length ? chips : h('span', { class: 'muted asst-nochannel', text: 'No channel' })),
        h('span', { class: 'spacer' }),
        h('button', { type: 'button', class: 'btn small', dataset: { action: 'edit' }, text: 'Edit', on: { click: () => edit(a.id) } }),
        a.channels && a.channels.length
          ? h('button', { type: 'button', class: 'btn small', dataset: { action: 'unpublish' }, text: 'Unpublish all', on: { click: () => rowAction(a.id, 'unpublish', {}) } })
          : null,
        h('button', { type: 'button', class: 'btn small ghost', dataset: { action: 'delete' }, text: 'Delete', 'aria-label': `Delete ${a.name}`, on: { click: () => remove(a) } })),
      h('p', { class: 'asst-summary muted', text: summary(a) }),
      publish,
      err ? h('p', { class: 'form-error', role: 'alert', text: err }) : null);
  }

  function summary(a) {
    const n = (a.rules || []).length;
    const parts = [`${n} rule${n === 1 ? '' : 's'}`];
    if ((a.transfer_keywords || []).length) parts.push(`transfers on: ${a.transfer_keywords.join(', ')}`);
    if ((a.spam_keywords || []).length) parts.push(`spam on: ${a.spam_keywords.join(', ')}`);
    parts.push(a.default_reply ? 'has a default reply' : 'no default reply: transfers when nothing matches');
    return parts.join(' · ');
  }

  function input(id, label, key, { textarea = false, placeholder = null, hint = null } = {}) {
    const el = textarea
      ? h('textarea', { id, name: key, rows: 2, placeholder })
      : h('input', { id, name: key, type: 'text', placeholder });
    el.value = draft[key];
    el.addEventListener('input', () => { draft[key] = el.value; });
    return h('div', { class: 'field' }, h('label', { for: id, text: label }), el, hint ? h('span', { class: 'hint', text: hint }) : null);
  }

  function ruleRow(r, i) {
    const match = h('input', { type: 'text', name: 'match', class: 'rule-match', placeholder: 'When the message contains…', 'aria-label': `Rule ${i + 1}: match` });
    const reply = h('input', { type: 'text', name: 'reply', class: 'rule-reply', placeholder: 'Reply with…', 'aria-label': `Rule ${i + 1}: reply` });
    match.value = r.match;
    reply.value = r.reply;
    match.addEventListener('input', () => { r.match = match.value; });
    reply.addEventListener('input', () => { r.reply = reply.value; });
    return h('li', { class: 'rule' }, match, h('span', { class: 'rule-arrow', 'aria-hidden': 'true', text: '→' }), reply,
      h('button', {
        type: 'button', class: 'btn ghost small', dataset: { action: 'remove-rule' }, text: 'Remove', 'aria-label': `Remove rule ${i + 1}`,
        on: {
          click: () => {
            draft.rules.splice(i, 1);
            render();
            // focus on the rule that took its place, else the one before, else Add rule
            const matches = root.querySelectorAll('#assistant-form .rule-match');
            const next = matches[Math.min(i, matches.length - 1)];
            (next || root.querySelector('#assistant-form [data-action="add-rule"]'))?.focus();
          },
        },
      }));
  }

  function form() {
    const isNew = V.editing === 'new';
    const submit = h('button', { type: 'submit', class: 'btn primary', dataset: { action: 'save' }, text: isNew ? 'Create assistant' : 'Save changes' });
    const f = h('form', { id: 'assistant-form', class: 'asst-form', novalidate: true },
      h('h2', { text: isNew ? 'New assistant' : 'Edit assistant' }),
      input('assistant-name', 'Name', 'name', { placeholder: 'e.g. Order helper' }),
      h('fieldset', { class: 'rules' },
        h('legend', { text: 'Rules' }),
        h('p', { class: 'hint', text: 'When a customer message contains the match (any case), the assistant sends the reply.' }),
        h('ul', { class: 'rule-list' }, draft.rules.map(ruleRow)),
        h('button', { type: 'button', class: 'btn small', dataset: { action: 'add-rule' }, text: 'Add rule',
          on: {
            click: () => {
              draft.rules.push({ match: '', reply: '' });
              render();
              const matches = root.querySelectorAll('#assistant-form .rule-match');
              matches[matches.length - 1]?.focus();
            },
          },
        })),
      input('assistant-transfer-keywords', 'Transfer keywords', 'transfer_keywords', { placeholder: 'agent, human', hint: 'Comma-separated. A message containing one goes to the team.' }),
      input('assistant-transfer-reply', 'Transfer reply (optional)', 'transfer_reply', { textarea: true, placeholder: 'Sent when handing over to the team' }),
      input('assistant-spam-keywords', 'Spam keywords (optional)', 'spam_keywords', { placeholder: 'casino, lottery', hint: 'Comma-separated. A message containing one marks the conversation as spam.' }),
      input('assistant-default-reply', 'Default reply (optional)', 'default_reply', { textarea: true, placeholder: 'Sent when no rule matches; without it the message goes to the team' }),
      V.formError ? h('p', { class: V.formConflict ? 'form-error asst-conflict' : 'form-error', role: 'alert', tabindex: -1, text: V.formError }) : null,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn ghost', dataset: { action: 'cancel' }, text: 'Cancel', on: { click: closeForm } }),
        submit));
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      save(submit);
    });
    return f;
  }

  render();
  load();
  return { reload: load };
}
