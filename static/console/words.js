// Human words for statuses, times and timeline events.

export const STATUS_LABEL = {
  pending: 'Pending',
  assigned: 'Assigned',
  on_hold: 'On hold',
  help_requested: 'Help requested',
  help_answered: 'Help answered',
  answered: 'Answered',
  archived: 'Archived',
};

export const FOLDERS = [
  ['pending', 'Pending'],
  ['mine', 'Mine'],
  ['on_hold', 'On hold'],
  ['help_requests', 'Help requests'],
  ['answered', 'Answered'],
  ['archived', 'Archived'],
  ['spam', 'Spam'],
  ['all', 'All'],
];

export const CONV_STATES = [
  ['open', 'Open'],
  ['closed', 'Closed'],
  ['spam', 'Spam'],
  ['all', 'All'],
];

export const ROLE_LABEL = { agent: 'Agent', supervisor: 'Supervisor', admin: 'Admin' };

/** "Visitor 3f2a" for a contact id. */
export function visitorName(contactId) {
  const s = String(contactId || '').replace(/^k_/, '');
  return `Visitor ${s.slice(-4) || '?'}`;
}

const two = (n) => String(n).padStart(2, '0');

/** "14:05" today, "12 Mar 14:05" otherwise. */
export function fmtTime(at) {
  if (!at) return '';
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  if (d.toDateString() === now.toDateString()) return hm;
  return `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} ${hm}`;
}

/** "just now", "5 min ago", "3 h ago", or a date. */
export function fmtAgo(at) {
  const d = new Date(at);
  const s = (Date.now() - d.getTime()) / 1000;
  if (Number.isNaN(s)) return '';
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return fmtTime(at);
}

/** "14:59 left", "1 h 05 min left". */
export function fmtLeft(until) {
  const ms = new Date(until).getTime() - Date.now();
  if (Number.isNaN(ms)) return '';
  if (ms <= 0) return 'ending…';
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (hh > 0) return `${hh} h ${two(mm)} min left`;
  return `${mm}:${two(ss)} left`;
}

/** A rating of 1 to 5 as stars: "★★★★☆". */
export function stars(score) {
  const n = Math.max(0, Math.min(5, score || 0));
  return '★'.repeat(n) + '☆'.repeat(5 - n);
}

function quote(text, n = 60) {
  const t = String(text || '').replace(/\s+/g, ' ').trim();
  return `“${t.length > n ? `${t.slice(0, n - 1)}…` : t}”`;
}

/**
 * One sentence for a timeline event. `who(id)` names an agent, a bot or the system;
 * `messageText(id)` gives the text of a customer message (or null).
 */
export function describeEvent(ev, who, messageText, customer = visitorName) {
  const d = ev.data || {};
  const by = d.by ? who(d.by) : 'Someone';
  switch (ev.kind) {
    case 'conversation.opened':
      return 'Conversation opened';
    case 'conversation.reopened':
      // `by` names the agent whose reopen of a message reopened it; without it, the
      // customer wrote again
      if (d.by && d.by !== 'system') return `Conversation reopened by ${by === 'You' ? 'you' : by}`;
      return 'Conversation reopened by a new customer message';
    case 'conversation.closed':
      return d.notes ? `${by} closed the conversation — notes: ${quote(d.notes, 200)}` : `${by} closed the conversation`;
    case 'session.ended':
      return d.reason ? `${by} ended the messaging session (${d.reason})` : `${by} ended the messaging session — the customer can no longer write in this conversation`;
    case 'conversation.spam':
      return d.spam ? `${by} marked the conversation as spam` : `${by} moved the conversation out of spam`;
    case 'conversation.bot':
      if (d.active) return `Bot turned back on (${by})`;
      return d.by === 'system' || String(d.by).startsWith('bot:') ? 'Bot turned off — a human takes over' : `Bot turned off — ${by} ${by === 'You' ? 'take' : 'takes'} over`;
    case 'conversation.owner': {
      const owner = who(d.owner);
      // given by someone else (a handover, or an assignment by a supervisor): who did
      const given = d.by && d.by !== d.owner && d.by !== 'system' && !String(d.by).startsWith('bot:') ? ` (${by})` : '';
      return `${owner} now ${owner === 'You' ? 'own' : 'owns'} this conversation${given}`;
    }
    case 'presence.changed': {
      const agent = who(d.agent_id);
      return `${agent} ${agent === 'You' ? 'are' : 'is'} ${d.presence}`;
    }
    case 'message.status_changed':
      return describeStatus(d, by, who, messageText);
    case 'message.created': {
      const m = d.message || {};
      return `${customer(m.contact_id)} wrote ${quote(m.text)}`;
    }
    case 'reply.created': {
      const r = d.reply || {};
      const author = r.author && r.author.kind === 'bot' ? who(`bot:${r.author.id}`) : who(r.author && r.author.id);
      return `${author} replied ${quote(r.text)}`;
    }
    case 'comment.created': {
      const c = d.comment || {};
      return `${who(c.author && c.author.id)} added an internal comment ${quote(c.text)}`;
    }
    case 'conversation.rated': {
      // the hub's ratings (an extension): 1 to 5 stars, and the customer's words
      const said = d.comment ? `: ${quote(d.comment, 200)}` : '';
      return `${customer(d.contact_id)} rated the conversation ${stars(d.score)} (${d.score}/5)${said}`;
    }
    case 'conversation.page': {
      // the hub's page views (an extension): where on the site the customer is now
      const page = d.title ? `${quote(d.title, 80)} (${shortUrl(d.url)})` : shortUrl(d.url);
      return `${customer(d.contact_id)} went to ${page}`;
    }
    default:
      return ev.kind;
  }
}

/** A page view's data as one line: its title, then its address (or the address alone). */
export function pageLabel(d) {
  return d.title ? `${d.title} — ${shortUrl(d.url)}` : shortUrl(d.url);
}

/** A page address as a reader takes it in: no scheme, cut past 80 characters. */
export function shortUrl(url) {
  const u = String(url || '').replace(/^https?:\/\//i, '');
  return u.length > 80 ? `${u.slice(0, 79)}…` : u;
}

function describeStatus(d, by, who, messageText) {
  const text = messageText(d.message_id);
  let msg = 'a message';
  if (text === '') msg = 'the message';
  else if (text !== null && text !== undefined) msg = `the message ${quote(text, 40)}`;
  const named = d.assignee ? who(d.assignee) : null;
  const assignee = named === 'You' ? 'you' : named;
  const self = d.assignee && d.assignee === d.by;
  switch (d.to) {
    case 'assigned':
      // `system`: automatic assignment (the hub's routing, an extension)
      if (d.from === 'pending' && d.by === 'system') return `${msg[0].toUpperCase()}${msg.slice(1)} was assigned automatically to ${assignee}`;
      if (d.from === 'pending') return self ? `${by} took ${msg}` : `${by} assigned ${msg} to ${assignee}`;
      if (d.from === 'help_requested') return self ? `${by} took the help request on ${msg}` : `${by} assigned the help request on ${msg} to ${assignee}`;
      if (d.from === 'on_hold') return `Hold over: ${msg} is back with ${assignee}`;
      return `${msg[0].toUpperCase()}${msg.slice(1)} is now assigned to ${assignee || 'nobody'}`;
    case 'pending':
      if (d.from === 'on_hold' && d.by === 'system') return `Hold over: ${msg} is back in Pending`;
      // `system` from someone's Mine: its agent went offline (automation's reassign_offline)
      if (d.by === 'system' && (d.from === 'assigned' || d.from === 'help_answered')) return `${msg[0].toUpperCase()}${msg.slice(1)} went back to Pending: its agent went offline`;
      if (d.from === 'help_requested' || d.answer) return `${by} answered the help request ${d.answer ? `${quote(d.answer, 200)} ` : ''}— ${msg} is back in Pending`;
      if (d.from === 'answered' && String(d.by).startsWith('bot:')) return `${by} transferred ${msg} to a human`;
      if (d.from === 'answered' || d.from === 'archived') return `${by} reopened ${msg}`;
      return `${by} unassigned ${msg} — back in Pending`;
    case 'on_hold':
      return d.hold_until ? `${by} put ${msg} on hold until ${fmtTime(d.hold_until)}` : `${by} put ${msg} on hold`;
    case 'help_requested':
      return `${by} asked for help on ${msg}${d.question ? `: ${quote(d.question, 200)}` : ''}`;
    case 'help_answered':
      return `${by} answered the help request${d.answer ? ` ${quote(d.answer, 200)}` : ''} — ${msg} is back with ${assignee}`;
    case 'answered':
      return `${by} answered ${msg}`;
    case 'archived':
      return `${by} archived ${msg} without replying`;
    default:
      return `${msg} is now ${STATUS_LABEL[d.to] || d.to}`;
  }
}
