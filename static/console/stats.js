// The Stats screen (any agent, PROTOCOL §8's GET /api/stats): how many customer messages
// are in each status and on each channel, how many conversations are open, closed or
// spam, and how fast the team answers (first response) and resolves (first close),
// as medians and 90th percentiles; and what waits for the team now (pending messages and
// help requests, with the one waiting longest: the hub's `waiting=true`). Read again
// every 15 s while shown, and on demand.

import { h, fill } from './dom.js';
import { ApiError, politeMessage } from './api.js';
import { STATUS_LABEL } from './words.js';

const EVERY_MS = 15000;

/** 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h; a percentile with no sample is a dash. */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
  const d = Math.floor(hours / 24);
  return hours % 24 ? `${d} d ${hours % 24} h` : `${d} d`;
}

/**
 * Mounts the screen in `root`. api: the console's request function; onError(err): for an
 * expired session. Returns {reload, stop}.
 */
export function mountStats(root, { api, onError = () => {} }) {
  const V = { data: null, error: null, at: null, busy: false };
  let timer = null;

  async function load() {
    V.busy = true;
    try {
      // with the customers' ratings (the hub's `satisfaction=true`, an extension)
      // and what waits now (`waiting=true`, an extension), and what the bots answered
      // alone (`automation=true`, an extension)
      V.data = await api('GET', '/api/stats?satisfaction=true&waiting=true&automation=true');
      V.error = null;
      V.at = new Date();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') {
        V.busy = false;
        return onError(e);
      }
      V.error = politeMessage(e);
    }
    V.busy = false;
    render();
  }

  /** One figure; `hint` is a text or a list of texts and elements. */
  function figure(label, value, key, hint = null) {
    return h('div', { class: 'stat', dataset: { stat: key } },
      h('div', { class: 'stat-value', text: String(value) }),
      h('div', { class: 'stat-label', text: label }),
      hint ? h('div', { class: 'stat-hint' }, hint) : null);
  }

  /** A folder's waiting count, and how long ago its longest-waiting message was written. */
  function waitingFigure(label, f, key, folder) {
    const count = f ? f.count : 0;
    const oldest = f && f.oldest;
    const age = oldest && oldest.at ? fmtDuration((Date.now() - Date.parse(oldest.at)) / 1000) : null;
    return figure(label, count ?? 0, key, age
      ? [`longest waiting: written ${age} ago · `,
        h('a', { href: `#/inbox/${folder}/c/${encodeURIComponent(oldest.conversation_id)}`, class: 'stat-link', text: 'Open' })]
      : 'nothing waits');
  }

  function render() {
    const d = V.data;
    const body = [];
    if (V.error) body.push(h('p', { class: 'form-error', role: 'alert', text: V.error }));
    if (!d) {
      body.push(h('p', { class: 'muted', text: V.error ? '' : 'Loading…' }));
    } else {
      const c = d.conversations || {};
      const byStatus = (d.messages && d.messages.by_status) || {};
      const byChannel = (d.messages && d.messages.by_channel) || {};
      const fr = d.first_response_seconds || {};
      const res = d.resolution_seconds || {};
      const sat = d.satisfaction || { ratings: 0 };
      const w = d.waiting || {};
      const bots = d.automation || { bot_conversations: 0 };
      body.push(
        h('section', { class: 'stats-group', 'aria-labelledby': 'stats-waiting' },
          h('h2', { id: 'stats-waiting', text: 'Waiting now' }),
          h('div', { class: 'stats-row' },
            waitingFigure('Pending', w.pending, 'waiting_pending', 'pending'),
            waitingFigure('Help requests', w.help_requested, 'waiting_help', 'help_requests'))),
        h('section', { class: 'stats-group', 'aria-labelledby': 'stats-satisfaction' },
          h('h2', { id: 'stats-satisfaction', text: 'Customer satisfaction' }),
          sat.ratings
            ? h('div', { class: 'stats-row' },
              figure('Satisfied', `${sat.satisfied_percent} %`, 'satisfied_percent', 'rated 4 or 5 of 5'),
              figure('Average rating', `${sat.average} / 5`, 'rating_average'),
              figure('Ratings', sat.ratings, 'ratings', [5, 4, 3, 2, 1].map((s) => `${s}★ ${(sat.by_score || {})[s] ?? 0}`).join(' · ')))
            : h('p', { class: 'muted', text: 'No rating yet: customers rate a conversation in the widget once its session has ended.' })),
        h('section', { class: 'stats-group', 'aria-labelledby': 'stats-bots' },
          h('h2', { id: 'stats-bots', text: 'Bots' }),
          bots.bot_conversations
            ? h('div', { class: 'stats-row' },
              figure('Answered by the bot alone', `${bots.automated_percent} %`, 'automated_percent', 'no human reply, assignment or hand-over'),
              figure('Fully automated', bots.fully_automated, 'fully_automated'),
              figure('Bot conversations', bots.bot_conversations, 'bot_conversations', 'a bot replied'))
            : h('p', { class: 'muted', text: 'No bot has replied yet: publish an assistant on a channel (Admin → Assistants).' })),
        h('section', { class: 'stats-group', 'aria-labelledby': 'stats-speed' },
          h('h2', { id: 'stats-speed', text: 'How fast' }),
          h('div', { class: 'stats-row' },
            figure('First response, median', fmtDuration(fr.p50), 'first_response_p50', 'opened → first reply'),
            figure('First response, 90 %', fmtDuration(fr.p90), 'first_response_p90'),
            figure('Resolution, median', fmtDuration(res.p50), 'resolution_p50', 'opened → first close'),
            figure('Resolution, 90 %', fmtDuration(res.p90), 'resolution_p90'))),
        h('section', { class: 'stats-group', 'aria-labelledby': 'stats-convs' },
          h('h2', { id: 'stats-convs', text: 'Conversations' }),
          h('div', { class: 'stats-row' },
            figure('Open', c.open ?? 0, 'conv_open'),
            figure('Closed', c.closed ?? 0, 'conv_closed'),
            figure('Spam', c.spam ?? 0, 'conv_spam'))),
        h('section', { class: 'stats-group', 'aria-labelledby': 'stats-msgs' },
          h('h2', { id: 'stats-msgs', text: 'Customer messages by status' }),
          h('div', { class: 'stats-row' },
            Object.keys(STATUS_LABEL).map((st) => figure(STATUS_LABEL[st], byStatus[st] ?? 0, `status_${st}`)))),
        h('section', { class: 'stats-group', 'aria-labelledby': 'stats-channels' },
          h('h2', { id: 'stats-channels', text: 'Customer messages by channel' }),
          Object.keys(byChannel).length
            ? h('div', { class: 'stats-row' },
              Object.entries(byChannel).sort((a, b) => b[1] - a[1]).map(([ch, n]) => figure(ch, n, `channel_${ch}`)))
            : h('p', { class: 'muted', text: 'No customer message yet.' })),
      );
    }
    fill(root,
      h('header', { class: 'admin-head' },
        h('div', {},
          h('h1', { id: 'admin-title', text: 'Stats' }),
          h('p', { class: 'muted', text: V.at ? `As of ${V.at.toLocaleTimeString()}; read again every 15 seconds.` : 'The whole inbox, since the hub started keeping it.' })),
        h('button', { id: 'stats-refresh', type: 'button', class: 'btn', text: 'Refresh', disabled: V.busy, on: { click: () => load() } })),
      h('div', { class: 'admin-body stats' }, body));
  }

  render();
  load();
  timer = setInterval(() => { if (root.isConnected) load(); else clearInterval(timer); }, EVERY_MS);
  return {
    reload: load,
    stop: () => clearInterval(timer),
  };
}
