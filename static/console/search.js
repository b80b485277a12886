// Search results (`GET /api/search`, an extension): what each found event says, and
// its words that match the query, marked. The hub folds words the same way
// (src/store/search.rs): NFKD, no combining marks, lower case, split on anything that
// is not a letter or a digit; a query word matches a word it starts.

import { h } from './dom.js';

const WORD = /[\p{L}\p{N}]+/gu;

// Letters that decomposition leaves whole, spelt as typed without them (as the hub does).
const WHOLE = { ς: 'σ', œ: 'oe', æ: 'ae', ß: 'ss', þ: 'th', ð: 'd', đ: 'd', ø: 'o', ł: 'l', ı: 'i', ħ: 'h' };
const WHOLE_RE = new RegExp(`[${Object.keys(WHOLE).join('')}]`, 'gu');

/** A word as the hub compares it. */
export function foldWord(w) {
  return w.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(WHOLE_RE, (c) => WHOLE[c]);
}

/** The query's words as the hub reads them (two letters or digits at least, each once). */
export function queryWords(q) {
  const out = [];
  for (const m of foldWord(String(q || '')).matchAll(WORD)) {
    if ([...m[0]].length >= 2 && !out.includes(m[0])) out.push(m[0]);
  }
  return out;
}

/**
 * What a found event is and says: `{ what, text }` where `what` names the kind of
 * text ("Customer", "Reply", "Internal note", …) and `text` is the text searched.
 */
export function foundText(ev, contactLine) {
  const d = ev.data || {};
  switch (ev.kind) {
    case 'message.created': return { what: 'message', text: (d.message && d.message.text) || '' };
    case 'reply.created': return { what: 'reply', text: (d.reply && d.reply.text) || '' };
    case 'comment.created': return { what: 'comment', text: (d.comment && d.comment.text) || '' };
    case 'conversation.closed': return { what: 'notes', text: d.notes || '' };
    case 'session.ended': return { what: 'session', text: d.reason || '' };
    case 'conversation.rated': return { what: 'rating', text: d.comment || '' };
    case 'message.status_changed':
      return d.answer ? { what: 'help answer', text: d.answer } : { what: 'help question', text: d.question || '' };
    case 'conversation.opened': return { what: 'customer', text: contactLine(d.conversation && d.conversation.contact_id) };
    default: return { what: 'event', text: '' };
  }
}

/**
 * A one-line excerpt of `text` around its first match (at most `max` characters), with
 * every matching word in a <mark>.
 */
export function marked(text, words, max = 140) {
  const t = String(text || '').replace(/\s+/g, ' ').trim();
  const spans = [];
  for (const m of t.matchAll(WORD)) {
    const f = foldWord(m[0]);
    if (words.some((w) => f.startsWith(w))) spans.push([m.index, m.index + m[0].length]);
  }
  let from = 0;
  if (spans.length && spans[0][0] > max / 3) from = t.lastIndexOf(' ', spans[0][0] - Math.floor(max / 4)) + 1;
  let end = Math.min(t.length, from + max);
  const cut = end < t.length;
  const out = [];
  if (from > 0) out.push('…');
  let at = from;
  for (const [s, e] of spans) {
    if (s < at || s >= end) continue;
    out.push(t.slice(at, s), h('mark', { text: t.slice(s, Math.min(e, end)) }));
    at = Math.min(e, end);
  }
  out.push(t.slice(at, end));
  if (cut) out.push('…');
  return out;
}
