/*
 * The hub's chat widget. Embed it in any page with one tag:
 *
 *   <script src="https://YOUR-HUB/widget.js" data-title="Support" data-subtitle="We reply in minutes"></script>
 *
 * Optional attributes: data-title, data-subtitle, data-greeting, data-channel (default
 * "web"), data-accent (a CSS colour), data-open ("true" to start open), data-name and
 * data-email (the visitor, when the host site knows them: agents see them).
 * It finds the hub from its own src, keeps the visitor's token in localStorage, sends
 * with idempotency keys (client_id) so a retry never duplicates a message, and resumes
 * its live socket with `since` so no reply is missed. Customer and agent text is only
 * ever set with textContent. Styles live in the hub's /widget.css, loaded inside a
 * shadow root so the host page's CSS and the widget's never clash.
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script || !script.src) return;
  if (window.HubWidget && window.HubWidget.loaded) return;

  var src = new URL(script.src, location.href);
  var BASE = src.origin + src.pathname.replace(/\/widget\.js$/, '');
  var WS_BASE = BASE.replace(/^http/, 'ws');
  var CONF = {
    title: script.getAttribute('data-title') || 'Chat with us',
    // shown while someone of the team is online (else the hub's availability says so)
    subtitle: script.getAttribute('data-subtitle') || null,
    greeting: script.getAttribute('data-greeting') || 'Hi there! How can we help you today?',
    channel: script.getAttribute('data-channel') || 'web',
    accent: script.getAttribute('data-accent') || null,
    open: script.getAttribute('data-open') === 'true',
    // Who the visitor is, when the host site knows (a signed-in customer): shown to agents.
    name: script.getAttribute('data-name') || null,
    email: script.getAttribute('data-email') || null,
  };
  // The longest text the hub takes (PROTOCOL §3: 413 past 4,096 characters).
  var MAX_CHARS = 4096;
  var KEY = 'hub.widget:' + BASE + ':' + CONF.channel;
  var OPEN_KEY = KEY + ':open';

  // ------------------------------------------------------------------ storage

  function load(k, fallback) {
    try {
      var v = localStorage.getItem(k);
      return v ? JSON.parse(v) : fallback;
    } catch (e) {
      return fallback;
    }
  }
  function save(k, v) {
    try {
      if (v === null) localStorage.removeItem(k);
      else localStorage.setItem(k, JSON.stringify(v));
    } catch (e) { /* private mode: keep working in memory */ }
  }

  var stored = load(KEY, null) || {};
  var state = {
    token: stored.token || null,
    contactId: stored.contact_id || null,
    outbox: Array.isArray(stored.outbox) ? stored.outbox : [], // [{client_id, text, at}]
    lastSeq: null,
    epoch: null,
    conversationId: null,
    ended: false,
    open: false,
    unread: 0,
    // the seq of the latest reply the visitor has had in front of them (the panel open),
    // kept across pages and tabs: a reply after it, the panel closed, counts as unread
    seen: typeof stored.seen === 'number' ? stored.seen : null,
  };
  function persist() {
    var prev = load(KEY, null);
    if (prev && prev.token === state.token && typeof prev.seen === 'number') {
      state.seen = Math.max(state.seen || 0, prev.seen);
    }
    save(KEY, { token: state.token, contact_id: state.contactId, outbox: state.outbox, seen: state.seen });
  }

  function uid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x < 16 ? '0' : '') + x.toString(16); }).join('');
  }

  // ------------------------------------------------------------------ DOM

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function svg(paths, cls) {
    var ns = 'http://www.w3.org/2000/svg';
    var s = document.createElementNS(ns, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('class', cls || 'hw-icon');
    paths.forEach(function (d) {
      var p = document.createElementNS(ns, 'path');
      p.setAttribute('d', d);
      s.appendChild(p);
    });
    return s;
  }

  var host = el('div');
  host.id = 'hub-chat-widget';
  host.style.visibility = 'hidden'; // until the stylesheet is in
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  var css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = BASE + '/widget.css';
  css.onload = css.onerror = function () { host.style.visibility = ''; };
  root.appendChild(css);
  if (CONF.accent) host.style.setProperty('--hw-accent', CONF.accent);

  var wrap = el('div', 'hw-root');
  var panel = el('section', 'hw-panel');
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', CONF.title);
  panel.hidden = true;

  var head = el('header', 'hw-head');
  var headText = el('div', 'hw-head-text');
  headText.appendChild(el('div', 'hw-title', CONF.title));
  // Whether someone is there, from the hub (an extension: GET /api/widget/availability):
  // "Online · replies in a few minutes" from the team's median first response, or "Away"
  // when no agent is online; the page's own data-subtitle replaces the online words.
  var subtitle = el('div', 'hw-subtitle');
  var presenceDot = el('span', 'hw-dot');
  var subtitleText = el('span', null, CONF.subtitle || '');
  subtitle.appendChild(presenceDot);
  subtitle.appendChild(subtitleText);
  presenceDot.hidden = true;
  headText.appendChild(subtitle);
  var closeBtn = el('button', 'hw-close');
  closeBtn.type = 'button';
  closeBtn.setAttribute('aria-label', 'Close the chat');
  closeBtn.appendChild(svg(['M18 6L6 18', 'M6 6l12 12']));
  head.appendChild(el('span', 'hw-logo', CONF.title.trim().charAt(0).toUpperCase()));
  head.appendChild(headText);
  head.appendChild(closeBtn);

  var statusBar = el('div', 'hw-conn', 'Reconnecting…');
  statusBar.setAttribute('role', 'status');
  statusBar.hidden = true;

  var log = el('ol', 'hw-log');
  log.setAttribute('aria-live', 'polite');
  log.setAttribute('aria-label', 'Messages');

  // A reply that comes while the visitor reads further up does not pull them down: this
  // says it is there, and takes them to it.
  var newBelow = el('button', 'hw-new-below', 'New reply ↓');
  newBelow.type = 'button';
  newBelow.hidden = true;

  // Someone of the brand is typing (the hub's typing signals, an extension): shown under
  // the messages, gone when the reply comes, when they stop, or 6 s after the last word.
  var typingRow = el('div', 'hw-typing');
  typingRow.setAttribute('aria-hidden', 'true');
  typingRow.appendChild(el('span', 'hw-dots'));
  typingRow.appendChild(el('span', null, 'Typing…'));
  typingRow.hidden = true;

  var endedBar = el('div', 'hw-ended');
  endedBar.setAttribute('role', 'status');
  endedBar.appendChild(el('strong', null, 'This conversation has ended.'));
  // the reason the agent gave, when the hub sent one (§7's session.ended)
  var endedReason = el('span', 'hw-ended-reason');
  endedReason.dir = 'auto';
  endedReason.hidden = true;
  endedBar.appendChild(endedReason);
  endedBar.appendChild(el('span', null, ' Send a message to start a new one.'));
  // How did we do? (the hub's ratings, an extension): five stars once the session has
  // ended, then an optional comment; a second click changes the score.
  var rating = el('div', 'hw-rating');
  var ratingAsk = el('div', 'hw-rating-ask', 'How was this conversation?');
  var stars = el('div', 'hw-stars');
  stars.setAttribute('role', 'radiogroup');
  stars.setAttribute('aria-label', 'Rate this conversation');
  var starBtns = [];
  [1, 2, 3, 4, 5].forEach(function (n) {
    var b = el('button', 'hw-star', '★');
    b.type = 'button';
    b.dataset.score = String(n);
    b.setAttribute('role', 'radio');
    b.setAttribute('aria-checked', 'false');
    b.setAttribute('aria-label', n + (n === 1 ? ' star' : ' stars') + ' out of 5');
    // a new score keeps the words already given
    b.addEventListener('click', function () { rate(n, rated && rated.comment); });
    stars.appendChild(b);
    starBtns.push(b);
  });
  var ratingForm = el('form', 'hw-rating-form');
  var ratingComment = el('textarea', 'hw-rating-comment');
  ratingComment.rows = 2;
  ratingComment.maxLength = 1000;
  ratingComment.placeholder = 'Anything to add? (optional)';
  ratingComment.setAttribute('aria-label', 'Your comment');
  ratingComment.dir = 'auto';
  var ratingSend = el('button', 'hw-rating-send', 'Send');
  ratingSend.type = 'submit';
  ratingForm.appendChild(ratingComment);
  ratingForm.appendChild(ratingSend);
  ratingForm.hidden = true;
  var ratingThanks = el('div', 'hw-rating-thanks', 'Thank you for your feedback!');
  ratingThanks.setAttribute('role', 'status');
  ratingThanks.hidden = true;
  rating.appendChild(ratingAsk);
  rating.appendChild(stars);
  rating.appendChild(ratingForm);
  rating.appendChild(ratingThanks);
  endedBar.appendChild(rating);
  endedBar.hidden = true;

  var form = el('form', 'hw-form');
  var input = el('textarea', 'hw-input');
  input.rows = 1;
  input.placeholder = 'Write a message…';
  input.setAttribute('aria-label', 'Your message');
  input.dir = 'auto'; // Arabic or Hebrew typed here runs right to left
  // No maxLength: a paste past it would be cut without a word. The length is checked
  // on send instead (MAX_CHARS), and the text kept for the customer to shorten.
  var sendBtn = el('button', 'hw-send');
  sendBtn.type = 'submit';
  sendBtn.setAttribute('aria-label', 'Send');
  sendBtn.appendChild(svg(['M22 2L11 13', 'M22 2l-7 20-4-9-9-4 20-7z']));
  form.appendChild(input);
  form.appendChild(sendBtn);
  var formError = el('div', 'hw-error');
  formError.setAttribute('role', 'alert');
  formError.hidden = true;

  panel.appendChild(head);
  panel.appendChild(statusBar);
  panel.appendChild(log);
  panel.appendChild(newBelow);
  panel.appendChild(typingRow);
  panel.appendChild(endedBar);
  panel.appendChild(formError);
  panel.appendChild(form);
  panel.appendChild(el('div', 'hw-foot', 'Powered by Hub'));

  var launcher = el('button', 'hw-launcher');
  launcher.type = 'button';
  launcher.setAttribute('aria-label', 'Open the chat');
  launcher.setAttribute('aria-expanded', 'false');
  launcher.appendChild(svg(['M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z'], 'hw-icon hw-icon-chat'));
  launcher.appendChild(svg(['M6 9l6 6 6-6'], 'hw-icon hw-icon-close'));
  var badge = el('span', 'hw-badge');
  badge.hidden = true;
  launcher.appendChild(badge);

  wrap.appendChild(panel);
  wrap.appendChild(launcher);
  root.appendChild(wrap);

  function mount() { document.body.appendChild(host); }
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);

  // ------------------------------------------------------------------ rendering

  var items = {}; // key ('message:ID' | 'reply:ID' | 'out:CLIENT_ID') → li
  var inFlight = null; // the outbox entry being delivered

  /** 14:05 today; 3 Dec, 14:05 another day; 3 Dec 2025, 14:05 another year. */
  function fmtTime(at) {
    var d = at ? new Date(at) : new Date();
    if (isNaN(d.getTime())) return '';
    var hh = d.getHours(), mm = d.getMinutes();
    var time = (hh < 10 ? '0' : '') + hh + ':' + (mm < 10 ? '0' : '') + mm;
    var now = new Date();
    if (d.toDateString() === now.toDateString()) return time;
    var day = { day: 'numeric', month: 'short' };
    if (d.getFullYear() !== now.getFullYear()) day.year = 'numeric';
    try {
      return d.toLocaleDateString(undefined, day) + ', ' + time;
    } catch (e) {
      return d.toDateString() + ', ' + time;
    }
  }

  // Who answered: the names of the agents whose replies the history holds (an extension
  // of the hub's), so a reply says "Alice · 14:05"; a reply of an agent not known yet
  // has the history read again for the name.
  var authors = {};
  var authorsAsked = {};
  function replyMeta(obj) {
    var a = obj.author || {};
    if (a.kind === 'bot') return 'Assistant · ' + fmtTime(obj.at);
    var who = a.id && authors[a.id];
    return who && who.name ? who.name + ' · ' + fmtTime(obj.at) : fmtTime(obj.at);
  }
  function learnAuthors(map) {
    if (!map || typeof map !== 'object') return;
    Object.keys(map).forEach(function (id) { authors[id] = map[id]; });
    Array.prototype.forEach.call(log.querySelectorAll('li[data-author-id]'), function (li) {
      var who = authors[li.dataset.authorId];
      var m = li.querySelector('.hw-meta');
      if (who && who.name && m && !li.dataset.named) {
        li.dataset.named = '1';
        m.textContent = who.name + ' · ' + m.textContent;
      }
    });
  }
  function askAuthor(id) {
    if (!id || authors[id] || authorsAsked[id]) return;
    authorsAsked[id] = true;
    http('GET', '/api/widget/messages?authors=true&ended=true').then(function (data) {
      learnAuthors(data.authors);
    }, function () {
      authorsAsked[id] = false;
    });
  }

  function greeting() {
    var li = el('li', 'hw-item hw-in hw-greeting');
    li.appendChild(el('div', 'hw-bubble', CONF.greeting));
    return li;
  }

  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 60; }
  function scrollDown() {
    log.scrollTop = log.scrollHeight;
    newBelow.hidden = true;
  }
  log.addEventListener('scroll', function () { if (!newBelow.hidden && atBottom()) newBelow.hidden = true; });
  newBelow.addEventListener('click', scrollDown);

  function bubble(kind, text, at, meta) {
    var li = el('li', 'hw-item ' + (kind === 'out' ? 'hw-out' : 'hw-in'));
    var b = el('div', 'hw-bubble', text);
    // Arabic or Hebrew text runs right to left (its own first strong character decides).
    b.dir = 'auto';
    li.appendChild(b);
    var m = el('div', 'hw-meta', meta || fmtTime(at));
    li.appendChild(m);
    return li;
  }

  function setMeta(li, text, cls) {
    var m = li.querySelector('.hw-meta');
    if (m) m.textContent = text;
    li.classList.remove('hw-sending', 'hw-failed', 'hw-retrying');
    if (cls) li.classList.add(cls);
  }

  /** Adds a message or reply from the hub, once (keyed by id). */
  function addFromHub(type, obj) {
    var key = type + ':' + obj.id;
    if (items[key]) return;
    var stick = atBottom();
    if (type === 'message') {
      if (inFlight && !inFlight.id && items['out:' + inFlight.client_id] && inFlight.text === obj.text) {
        // our own message, echoed before its ack
        inFlight.id = obj.id;
        var li0 = items['out:' + inFlight.client_id];
        items[key] = li0;
        li0.dataset.messageId = obj.id;
        setMeta(li0, fmtTime(obj.at) + ' · Sent');
        drawnMeanwhile(key, li0);
        return;
      }
      var li = bubble('out', obj.text, obj.at, fmtTime(obj.at) + ' · Sent');
      li.dataset.messageId = obj.id;
      items[key] = li;
      log.appendChild(li);
      drawnMeanwhile(key, li);
    } else {
      // a bot's reply says so: the customer can tell it from a person's
      var bot = obj.author && obj.author.kind === 'bot';
      var r = bubble('in', obj.text, obj.at, replyMeta(obj));
      r.dataset.replyId = obj.id;
      if (typeof obj.seq === 'number') r.dataset.seq = String(obj.seq);
      if (bot) r.classList.add('hw-bot');
      else if (obj.author && obj.author.id) {
        r.dataset.authorId = obj.author.id;
        if (authors[obj.author.id]) r.dataset.named = '1';
        else askAuthor(obj.author.id);
      }
      items[key] = r;
      log.appendChild(r);
      drawnMeanwhile(key, r);
      if (rebuilding) { /* counted once it is rebuilt */ } else if (state.open) markSeen();
      else countUnread();
    }
    if (stick) scrollDown();
    else if (type === 'reply' && state.open) newBelow.hidden = false;
  }

  function addOutgoing(entry) {
    var li = bubble('out', entry.text, entry.at, 'Sending…');
    li.classList.add('hw-sending');
    li.dataset.clientId = entry.client_id;
    items['out:' + entry.client_id] = li;
    log.appendChild(li);
    scrollDown();
    return li;
  }

  /** first: the bubble of the new conversation's first message, when known. */
  function conversationSeen(convId, first) {
    if (!convId) return;
    if (state.conversationId && convId !== state.conversationId) {
      var div = el('li', 'hw-divider', 'New conversation');
      // keep our pending bubble (if any) after the divider
      var pending = first || (inFlight && items['out:' + inFlight.client_id]);
      if (pending && pending.parentNode === log) log.insertBefore(div, pending);
      else log.appendChild(div);
    }
    if (convId !== state.conversationId) {
      state.conversationId = convId;
      state.ended = false;
      endedBar.hidden = true;
      endedReason.hidden = true;
    }
  }

  /** The reason a conversation of the history (read with `ended=true`) ended with: the
   * agent's words, null for none, undefined when the hub did not say (kept as shown). */
  function endReason(conv) {
    if (!conv || !conv.ended) return undefined;
    return typeof conv.ended.reason === 'string' ? conv.ended.reason : null;
  }

  /** reason: the agent's words (a string), none (null), or not known (undefined: kept). */
  function showEnded(reason) {
    if (typeof reason === 'string' && reason.trim()) {
      endedReason.textContent = reason.trim();
      endedReason.hidden = false;
    } else if (reason === null) {
      endedReason.hidden = true;
    }
    state.ended = true;
    endedBar.hidden = false;
    var stick = atBottom();
    if (stick) scrollDown();
  }

  /** The replies drawn after the latest one seen. */
  function countUnread() {
    var n = 0;
    if (state.seen !== null) {
      Array.prototype.forEach.call(log.querySelectorAll('li[data-reply-id]'), function (li) {
        if (Number(li.dataset.seq) > state.seen) n += 1;
      });
    }
    state.unread = n;
    renderBadge();
  }

  /** The panel is open: every reply drawn is seen. */
  function markSeen() {
    var top = state.seen === null ? 0 : state.seen;
    Array.prototype.forEach.call(log.querySelectorAll('li[data-reply-id]'), function (li) {
      var q = Number(li.dataset.seq);
      if (q > top) top = q;
    });
    if (top !== state.seen) {
      state.seen = top;
      persist();
    }
    state.unread = 0;
  }

  function renderBadge() {
    badge.hidden = state.unread === 0 || state.open;
    badge.textContent = state.unread > 9 ? '9+' : String(state.unread);
  }

  function setOpen(open) {
    state.open = open;
    panel.hidden = !open;
    wrap.classList.toggle('hw-is-open', open);
    launcher.setAttribute('aria-expanded', open ? 'true' : 'false');
    launcher.setAttribute('aria-label', open ? 'Close the chat' : 'Open the chat');
    try { sessionStorage.setItem(OPEN_KEY, open ? '1' : '0'); } catch (e) { /* ignore */ }
    if (open) {
      checkAvailability();
      markSeen();
      scrollDown();
      setTimeout(function () { input.focus(); }, 0);
    }
    renderBadge();
  }

  function showError(text) {
    formError.textContent = text;
    formError.hidden = !text;
  }

  // ------------------------------------------------------------------ HTTP

  function http(method, path, body) {
    var headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(BASE + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    }).then(function (res) {
      return res.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        if (!res.ok) {
          var err = new Error((data && data.error && data.error.message) || res.statusText);
          err.status = res.status;
          err.code = (data && data.error && data.error.code) || 'http_' + res.status;
          throw err;
        }
        return data;
      });
    }, function () {
      var err = new Error('network');
      err.status = 0;
      err.code = 'network';
      throw err;
    });
  }

  /** A token another tab of this shop stored: this tab is that visitor too. */
  function adoptStoredSession() {
    var s = load(KEY, null);
    if (state.token || !s || !s.token) return false;
    state.token = s.token;
    state.contactId = s.contact_id || null;
    state.lastSeq = null;
    state.seen = typeof s.seen === 'number' ? s.seen : null;
    connect();
    loadHistory();
    return true;
  }
  window.addEventListener('storage', function (e) {
    if (e.key !== KEY) return;
    if (adoptStoredSession()) return;
    // read in another tab of the shop: not unread here either
    var s = load(KEY, null);
    if (s && s.token === state.token && typeof s.seen === 'number' && s.seen > (state.seen || 0)) {
      state.seen = s.seen;
      if (state.open) markSeen();
      else countUnread();
    }
  });

  var sessionPromise = null;
  function ensureSession() {
    if (state.token) return Promise.resolve();
    // another tab may have started the session since this one loaded
    if (adoptStoredSession()) return Promise.resolve();
    if (sessionPromise) return sessionPromise;
    var who = { channel: CONF.channel };
    if (CONF.name) who.name = CONF.name;
    if (CONF.email) who.email = CONF.email;
    sessionPromise = http('POST', '/api/widget/session', who).then(function (s) {
      state.token = s.token;
      state.contactId = s.contact_id;
      state.lastSeq = null;
      state.seen = 0; // a new visitor: nothing answered yet
      persist();
      sessionPromise = null;
      connect();
    }, function (e) {
      sessionPromise = null;
      throw e;
    });
    return sessionPromise;
  }

  function forgetSession() {
    state.token = null;
    state.contactId = null;
    state.lastSeq = null;
    state.epoch = null;
    state.seen = null;
    persist();
    disconnect();
  }

  var historyReq = 0;
  var rebuilding = false; // the history's answer is being drawn
  // While a history load is in flight: what was drawn or learnt meanwhile (live events,
  // acknowledged sends), which its answer, read earlier, may not hold.
  var meanwhile = null;

  /** Notes a bubble drawn while a history load is in flight. */
  function drawnMeanwhile(key, li) {
    if (meanwhile && li) meanwhile.items.push([key, li]);
  }

  function loadHistory() {
    if (!state.token) return Promise.resolve();
    var mine = ++historyReq;
    meanwhile = { items: [], ended: false };
    // with the conversations before the latest (an extension of the hub's): what was
    // said before an ended session stays readable after a reload; and how the session
    // ended (`ended=true`, another), so that the notice says the agent's reason as live
    return http('GET', '/api/widget/messages?earlier=5&authors=true&ended=true').then(function (data) {
      if (mine !== historyReq) return;
      var seen = meanwhile || { items: [], ended: false };
      meanwhile = null;
      learnAuthors(data.authors);
      rebuilding = true;
      log.dataset.historyLoads = String((Number(log.dataset.historyLoads) || 0) + 1);
      // rebuild: the hub's items, then what arrived since the answer was read, then
      // what is still waiting to be sent
      items = {};
      log.textContent = '';
      log.appendChild(greeting());
      (data.earlier || []).forEach(function (c) {
        (c.items || []).forEach(function (it) {
          addFromHub(it.type === 'reply' ? 'reply' : 'message', it);
        });
        log.appendChild(el('li', 'hw-divider', 'New conversation'));
      });
      var conv = data.conversation;
      state.conversationId = conv ? conv.id : null;
      (data.items || []).forEach(function (it) {
        addFromHub(it.type === 'reply' ? 'reply' : 'message', it);
      });
      seen.items.forEach(function (p) {
        if (items[p[0]]) return; // the answer holds it
        items[p[0]] = p[1];
        if (p[1].dataset.clientId) items['out:' + p[1].dataset.clientId] = p[1];
        log.appendChild(p[1]);
      });
      state.outbox.forEach(function (o) {
        if (!o.id || !items['message:' + o.id]) {
          var li = addOutgoing(o);
          if (o.id) items['message:' + o.id] = li;
        }
      });
      rebuilding = false;
      // a visitor from before the hub kept what was seen: all of it was
      if (state.seen === null) markSeen();
      if (state.open) markSeen();
      else countUnread();
      if (conv && conv.session === 'ended') {
        showEnded(endReason(conv));
        showRating(conv.rating || null, true);
      }
      else if (seen.ended) showEnded();
      else {
        state.ended = false;
        endedBar.hidden = true;
      }
      scrollDown();
    }, function (e) {
      if (mine === historyReq) meanwhile = null;
      if (e.status === 401 || e.status === 403) forgetSession();
    });
  }

  // While the socket is down (or never comes up: a proxy that refuses WebSockets), the
  // history is read again every few seconds, backing off, so that replies still appear;
  // what it brings is merged by id, so nothing shows twice when the socket is back.
  var pollTimer = null;
  var polls = 0;

  function schedulePoll() {
    if (pollTimer || ready || !state.token) return;
    var delay = Math.min(30000, 5000 * Math.pow(1.5, polls));
    pollTimer = setTimeout(pollHistory, delay);
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
    polls = 0;
  }

  function pollHistory() {
    pollTimer = null;
    if (ready || !state.token) return;
    polls += 1;
    http('GET', '/api/widget/messages?authors=true&ended=true').then(function (data) {
      if (ready) return;
      var conv = data.conversation;
      if (conv) conversationSeen(conv.id);
      learnAuthors(data.authors);
      (data.items || []).forEach(function (it) {
        addFromHub(it.type === 'reply' ? 'reply' : 'message', it);
      });
      log.dataset.polls = String(polls);
      if (conv && conv.session === 'ended' && conv.id === state.conversationId) showEnded(endReason(conv));
      schedulePoll();
    }, function (e) {
      if (e.status === 401 || e.status === 403) {
        forgetSession();
        return;
      }
      schedulePoll();
    });
  }

  // ------------------------------------------------------------------ socket

  var ws = null;
  var ready = false;
  var attempt = 0;
  var reconnectTimer = null;
  var pingTimer = null;
  // A socket that stopped carrying frames (a network change, a laptop asleep) is not
  // closed by the browser for minutes: a ping unanswered for this long drops it, and the
  // widget reconnects with `since` (and polls meanwhile).
  var PONG_WAIT_MS = 10000;
  var PING_EVERY_MS = 15000;
  var silenceTimer = null;
  var waiters = {}; // client_id → {resolve, reject, timer}
  var disconnectedAt = null;
  var connBarTimer = null;

  function setConn(ok) {
    if (ok) {
      clearTimeout(connBarTimer);
      disconnectedAt = null;
      statusBar.hidden = true;
      stopPolling();
    } else if (disconnectedAt === null) {
      schedulePoll();
      disconnectedAt = Date.now();
      connBarTimer = setTimeout(function () { if (!ready && state.token) statusBar.hidden = false; }, 1200);
    }
  }

  function connect() {
    if (!state.token || ws) return;
    clearTimeout(reconnectTimer);
    var sock;
    try {
      sock = new WebSocket(WS_BASE + '/ws/widget');
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    ready = false;
    sock.onopen = function () {
      var hello = { type: 'hello', token: state.token, typing: true };
      if (state.lastSeq !== null) {
        hello.since = state.lastSeq;
        if (state.epoch) hello.epoch = state.epoch;
      }
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = function (m) {
      if (sock !== ws) return;
      clearTimeout(silenceTimer); // the socket lives
      var f;
      try { f = JSON.parse(m.data); } catch (e) { return; }
      onFrame(f);
    };
    sock.onclose = function (e) {
      if (sock !== ws) return;
      ws = null;
      ready = false;
      clearInterval(pingTimer);
      clearTimeout(silenceTimer);
      failWaiters();
      if (e.code === 4401) {
        // the token is no longer valid: start afresh on the next message
        forgetSession();
        return;
      }
      setConn(false);
      scheduleReconnect();
    };
    sock.onerror = function () { /* onclose follows */ };
  }

  /** Drops a socket that no longer carries frames, and reconnects at once. */
  function dropDeadSocket() {
    var s = ws;
    if (!s) return;
    ws = null;
    ready = false;
    clearInterval(pingTimer);
    clearTimeout(silenceTimer);
    try { s.close(4000); } catch (e) { /* ignore */ }
    failWaiters();
    setConn(false);
    attempt = 0;
    scheduleReconnect();
  }

  /** A ping that must be answered (by any frame) within PONG_WAIT_MS. */
  function probe() {
    if (!ready || !ws) return;
    try { ws.send('{"type":"ping"}'); } catch (e) { /* onclose follows */ }
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(dropDeadSocket, PONG_WAIT_MS);
  }

  // The browser says the network went or came back: find out at once, not at the next ping.
  window.addEventListener('offline', function () { if (ws) dropDeadSocket(); });
  window.addEventListener('online', function () {
    if (ws) probe();
    else if (state.token) { attempt = 0; connect(); }
  });

  function disconnect() {
    clearTimeout(reconnectTimer);
    clearInterval(pingTimer);
    clearTimeout(silenceTimer);
    if (ws) {
      var s = ws;
      ws = null;
      try { s.close(1000); } catch (e) { /* ignore */ }
    }
    ready = false;
    failWaiters();
  }

  function scheduleReconnect() {
    if (!state.token) return;
    var base = Math.min(10000, 500 * Math.pow(2, attempt));
    attempt += 1;
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, base / 2 + Math.random() * base / 2);
  }

  function onFrame(f) {
    if (f.type === 'welcome') {
      var fresh = state.lastSeq === null || f.reset === true;
      if (fresh) state.lastSeq = f.seq;
      state.epoch = f.epoch || state.epoch;
      ready = true;
      attempt = 0;
      setConn(true);
      clearInterval(pingTimer);
      pingTimer = setInterval(probe, PING_EVERY_MS);
      if (fresh) loadHistory();
      pump();
      return;
    }
    if (f.type === 'event') {
      if (typeof f.seq === 'number') {
        if (state.lastSeq !== null && f.seq <= state.lastSeq) return; // seen already
        state.lastSeq = f.seq;
      }
      var d = f.data || {};
      if (f.kind === 'message.created' && d.message) {
        conversationSeen(d.message.conversation_id);
        addFromHub('message', d.message);
      } else if (f.kind === 'reply.created' && d.reply) {
        showTyping(false);
        conversationSeen(d.reply.conversation_id);
        addFromHub('reply', d.reply);
      } else if (f.kind === 'session.ended') {
        if (!state.conversationId || f.conversation_id === state.conversationId) {
          showTyping(false);
          showRating(null);
          if (meanwhile) meanwhile.ended = true;
          showEnded(typeof d.reason === 'string' ? d.reason : null);
        }
      }
      return;
    }
    if (f.type === 'typing') {
      var ours = !state.conversationId || f.conversation_id === state.conversationId;
      showTyping(f.active === true && ours && !state.ended);
      return;
    }
    if (f.type === 'ack' || (f.type === 'error' && f.client_id)) {
      var w = f.client_id && waiters[f.client_id];
      if (!w) return;
      delete waiters[f.client_id];
      clearTimeout(w.timer);
      if (f.type === 'ack') w.resolve(f.message);
      else {
        var err = new Error(f.message || f.code);
        err.code = f.code;
        err.status = 400;
        w.reject(err);
      }
    }
  }

  function failWaiters() {
    Object.keys(waiters).forEach(function (k) {
      var w = waiters[k];
      delete waiters[k];
      clearTimeout(w.timer);
      var err = new Error('socket closed');
      err.code = 'network';
      err.status = 0;
      w.reject(err);
    });
  }

  // ------------------------------------------------------------------ availability

  var availabilityAt = 0;
  var availabilityTimer = null;
  function replyWords(sec) {
    if (typeof sec !== 'number') return 'Online now';
    if (sec < 60) return 'Online · replies in under a minute';
    if (sec < 300) return 'Online · replies in a few minutes';
    if (sec < 3600) return 'Online · replies in under an hour';
    return 'Online · replies within a few hours';
  }
  function showAvailability(a) {
    presenceDot.hidden = false;
    subtitle.classList.toggle('hw-online', !!a.online);
    subtitleText.textContent = a.online
      ? CONF.subtitle || replyWords(a.typical_reply_seconds)
      : 'Away right now — leave a message and we will reply here';
  }
  /** Asks the hub who is there: when the panel opens, then every minute while it is open. */
  function checkAvailability() {
    clearTimeout(availabilityTimer);
    if (state.open) availabilityTimer = setTimeout(checkAvailability, 60000);
    if (Date.now() - availabilityAt < 15000) return;
    availabilityAt = Date.now();
    http('GET', '/api/widget/availability').then(showAvailability, function () {
      availabilityAt = 0; // said nothing: keep what is shown, ask again next time
    });
  }

  // ------------------------------------------------------------------ rating

  var rated = null; // {score, comment} as the hub holds it, for this conversation
  function showRating(r, fromHistory) {
    rated = r;
    starBtns.forEach(function (b) {
      var on = !!r && Number(b.dataset.score) <= r.score;
      b.classList.toggle('hw-star-on', on);
      b.setAttribute('aria-checked', r && Number(b.dataset.score) === r.score ? 'true' : 'false');
    });
    if (!r) {
      ratingForm.hidden = true;
      ratingThanks.hidden = true;
      ratingAsk.textContent = 'How was this conversation?';
      return;
    }
    ratingAsk.textContent = 'Your rating';
    // a comment is asked for once, right after the stars; read back, it is thanked for
    ratingForm.hidden = fromHistory || !!r.comment;
    ratingThanks.hidden = !(fromHistory || r.comment);
  }

  function rate(score, comment) {
    var body = { score: score };
    if (state.conversationId) body.conversation_id = state.conversationId;
    if (comment) body.comment = comment;
    starBtns.forEach(function (b) { b.disabled = true; });
    ratingSend.disabled = true;
    return http('POST', '/api/widget/rating', body).then(function (data) {
      showRating({ score: data.rating.score, comment: data.rating.comment }, false);
      if (!comment) ratingComment.focus();
    }, function (e) {
      showError(e.code === 'network' ? 'Your rating could not be sent. Please try again.' : 'Your rating could not be saved.');
    }).then(function () {
      starBtns.forEach(function (b) { b.disabled = false; });
      ratingSend.disabled = false;
    });
  }

  ratingForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var c = ratingComment.value.trim();
    if (!rated) return;
    if (!c) {
      ratingForm.hidden = true;
      ratingThanks.hidden = false;
      return;
    }
    rate(rated.score, c).then(function () { ratingComment.value = ''; });
  });

  // ------------------------------------------------------------------ typing

  var typingHide = null;
  function showTyping(on) {
    clearTimeout(typingHide);
    var stick = atBottom();
    typingRow.hidden = !on;
    if (on) typingHide = setTimeout(function () { typingRow.hidden = true; }, 6000);
    if (on && stick) scrollDown();
  }

  // What this customer types is told to the team (the hub passes it on to the consoles):
  // "typing" again every 3 s while keys come, "stopped" once the box is empty, the
  // message sent, or 5 s without a key.
  var typingSaid = 0; // when "typing" was last said; 0: stopped
  var typingIdle = null;
  function sayTyping(on) {
    clearTimeout(typingIdle);
    if (on) typingIdle = setTimeout(function () { sayTyping(false); }, 5000);
    var now = Date.now();
    if (on && typingSaid && now - typingSaid < 3000) return;
    if (!on && !typingSaid) return;
    typingSaid = on ? now : 0;
    if (ready && ws && ws.readyState === WebSocket.OPEN) {
      try { ws.send(JSON.stringify({ type: 'typing', active: on })); } catch (e) { /* onclose follows */ }
    }
  }

  // ------------------------------------------------------------------ sending

  var PERMANENT = { invalid: 1, too_large: 1, forbidden: 1 };
  var pumping = false;
  var retryTimer = null;
  var failures = 0;

  /** Delivers one entry: over the socket when it is up (ack), else over HTTP; same client_id. */
  function deliver(entry) {
    if (ready && ws && ws.readyState === WebSocket.OPEN && failures < 2) {
      return new Promise(function (resolve, reject) {
        var timer = setTimeout(function () {
          delete waiters[entry.client_id];
          var err = new Error('timeout');
          err.code = 'network';
          err.status = 0;
          reject(err);
        }, 8000);
        waiters[entry.client_id] = { resolve: resolve, reject: reject, timer: timer };
        ws.send(JSON.stringify({ type: 'send', text: entry.text, client_id: entry.client_id }));
      });
    }
    return http('POST', '/api/widget/messages', { text: entry.text, client_id: entry.client_id })
      .then(function (data) { return data.message; });
  }

  function pump() {
    if (pumping || !state.outbox.length) return;
    pumping = true;
    clearTimeout(retryTimer);
    var entry = state.outbox[0];
    inFlight = entry;
    ensureSession().then(function () {
      return deliver(entry);
    }).then(function (msg) {
      failures = 0;
      state.outbox.shift();
      persist();
      var li = items['out:' + entry.client_id];
      if (msg) {
        // a message may have opened a conversation: the page it was written on goes
        // with it (the hub noted none while no conversation was open)
        if (page.noted !== msg.conversation_id) reportPage(true);
        // the divider goes above this message's own bubble, not at the end of the log
        conversationSeen(msg.conversation_id, li);
        var known = items['message:' + msg.id];
        if (known && known !== li && li) {
          // the echo came first and was drawn on its own: keep one bubble
          li.remove();
          li = known;
        }
        if (li) {
          items['message:' + msg.id] = li;
          li.dataset.messageId = msg.id;
          setMeta(li, fmtTime(msg.at) + ' · Sent');
          drawnMeanwhile('message:' + msg.id, li);
        }
      }
      inFlight = null;
      showError('');
      pumping = false;
      pump();
    }, function (e) {
      pumping = false;
      inFlight = entry;
      var li = items['out:' + entry.client_id];
      if (e.code === 'unauthorized' || e.status === 401) {
        forgetSession();
        retryTimer = setTimeout(pump, 300);
        return;
      }
      if (PERMANENT[e.code]) {
        state.outbox.shift();
        persist();
        inFlight = null;
        if (li) setMeta(li, 'Not sent', 'hw-failed');
        showError(e.code === 'too_large' ? 'That message is too long.' : 'That message could not be sent.');
        pump();
        return;
      }
      failures += 1;
      if (li) setMeta(li, 'Waiting for the network — retrying…', 'hw-retrying');
      var delay = Math.min(10000, 600 * Math.pow(2, Math.min(failures, 5)));
      retryTimer = setTimeout(pump, delay);
    });
  }

  function send(text) {
    text = text.replace(/\s+$/, '');
    if (!text.trim()) return;
    showError('');
    if (state.ended) {
      state.ended = false;
      endedBar.hidden = true;
    }
    if (meanwhile) meanwhile.ended = false;
    var entry = { client_id: uid(), text: text, at: new Date().toISOString() };
    state.outbox.push(entry);
    persist();
    addOutgoing(entry);
    pump();
  }

  // ------------------------------------------------------------------ wiring

  launcher.addEventListener('click', function () { setOpen(!state.open); });
  closeBtn.addEventListener('click', function () { setOpen(false); });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var t = input.value;
    if (!t.trim()) return;
    // Characters as the hub counts them (Unicode code points).
    var n = Array.from(t.replace(/\s+$/, '')).length;
    if (n > MAX_CHARS) {
      showError('Your message is too long (' + n + ' characters; ' + MAX_CHARS + ' at most). Please shorten it.');
      return;
    }
    input.value = '';
    autosize();
    sayTyping(false);
    send(t);
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit', { cancelable: true }));
    }
  });
  function autosize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 120) + 'px';
  }
  input.addEventListener('input', autosize);
  input.addEventListener('input', function () { sayTyping(input.value.trim() !== ''); });
  panel.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') {
      setOpen(false);
      launcher.focus();
    }
  });
  window.addEventListener('online', function () {
    if (!ws && state.token) { attempt = 0; connect(); }
    pump();
  });

  // ------------------------------------------------------------------ page views

  // Which page of the site the visitor is on, for the agents (the hub's
  // POST /api/widget/page, an extension): told when the widget loads, when the page
  // changes without a load (history API, anchors), and after a message that may have
  // opened a conversation. The hub keeps it only while a conversation is open.
  var page = { sent: null, noted: null, busy: false, again: null }; // again: 'changed' | 'force'
  function reportPage(force) {
    if (!state.token || !/^https?:$/i.test(location.protocol)) return;
    if (!force && location.href === page.sent) return;
    if (page.busy) {
      // one report at a time; the latest wish is taken up once it is answered
      if (force || page.again !== 'force') page.again = force ? 'force' : 'changed';
      return;
    }
    page.busy = true;
    page.sent = location.href;
    var body = { url: page.sent };
    var title = (document.title || '').trim();
    if (title) body.title = title.slice(0, 300);
    http('POST', '/api/widget/page', body).then(function (r) {
      page.noted = r && r.page ? r.page.conversation_id : null;
    }, function () { /* a page view is a hint: never retried, never shown */ }).then(function () {
      page.busy = false;
      var again = page.again;
      page.again = null;
      if (again) reportPage(again === 'force');
    });
  }
  ['pushState', 'replaceState'].forEach(function (name) {
    var orig = history[name];
    if (typeof orig !== 'function') return;
    history[name] = function () {
      var r = orig.apply(this, arguments);
      setTimeout(function () { reportPage(false); }, 0);
      return r;
    };
  });
  window.addEventListener('popstate', function () { reportPage(false); });
  window.addEventListener('hashchange', function () { reportPage(false); });

  log.appendChild(greeting());
  if (state.token) {
    // the history is read at once, whether or not the socket comes up (its welcome reads
    // it again, from where live events start); while the socket is down it is polled
    loadHistory();
    connect();
    setConn(false);
    reportPage(false);
  } else {
    state.outbox.forEach(addOutgoing);
  }
  if (state.outbox.length) pump();
  var wasOpen = null;
  try { wasOpen = sessionStorage.getItem(OPEN_KEY); } catch (e) { /* ignore */ }
  setOpen(wasOpen === null ? CONF.open : wasOpen === '1');

  window.HubWidget = {
    loaded: true,
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    send: function (text) { send(String(text)); },
  };
})();
