// A conversation as plain text, for the team's records or to pass on to the customer:
// what the customer saw (their messages and the replies), or everything (internal
// comments and the timeline's events too, marked as such). Times are UTC.

/** "2026-12-07 14:05 UTC" */
export function utc(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Lines after the first are indented, so that a long message stays one entry. */
function entry(at, head, text) {
  const [first, ...rest] = String(text).split('\n');
  return [`[${utc(at)}] ${head}${first}`, ...rest.map((l) => `    ${l}`)].join('\n');
}

/**
 * conv: {conversation, items} as the console holds it (items oldest first); full: with
 * comments and events; names: {customer(contactId), agent(id), bot(id), contactLine,
 * event(item)} give names and sentences.
 */
export function transcriptText(conv, full, names) {
  const c = conv.conversation;
  const state = [c.state === 'open' ? 'open' : 'closed', c.session === 'ended' ? 'session ended' : 'session active'];
  if (c.spam) state.push('spam');
  const out = [
    `Conversation with ${names.contactLine(c.contact_id)}`,
    `Channel ${c.channel} · opened ${utc(c.opened_at)} · ${state.join(' · ')}`,
    `Conversation ${c.id}`,
    '',
  ];
  for (const it of conv.items) {
    if (it.type === 'message') {
      out.push(entry(it.at, `${names.customer(it.contact_id)}: `, it.text));
    } else if (it.type === 'reply') {
      const a = it.author || {};
      const who = a.kind === 'bot' ? names.bot(a.id) : names.agent(a.id);
      out.push(entry(it.at, `${who}: `, it.text));
    } else if (full && it.type === 'comment') {
      out.push(entry(it.at, `(internal comment) ${names.agent(it.author && it.author.id)}: `, it.text));
    } else if (full && it.type === 'event') {
      out.push(entry(it.at, '— ', names.event(it)));
    }
  }
  return `${out.join('\n')}\n`;
}

/** A file name for it: the customer and the day it opened. */
export function transcriptName(customerName, openedAt) {
  const slug = String(customerName).normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '').toLowerCase().slice(0, 40) || 'customer';
  return `conversation-${slug}-${utc(openedAt).slice(0, 10) || 'undated'}.txt`;
}

/** Hands a text to the browser as a download. */
export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
