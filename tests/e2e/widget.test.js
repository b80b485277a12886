// The widget without its socket (a proxy that refuses WebSockets): the history is read at
// start and polled, so replies still appear, and nothing is doubled once the socket is
// back. A bot's reply is labelled as the assistant's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { openWidget, widgetSend, signIn } from './lib/pages.js';

const S = suite([['bob', 'Bob Stone']]);

const W = '#hub-chat-widget';

async function pendingMessage(text) {
  const data = await api(S.hub, 'GET', '/api/inbox?folder=pending', S.bob.token);
  return data.items.find((m) => m.text === text);
}

test('with its socket refused, the widget shows the history and polls for replies; no doubles when it is back', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  let blocked = true;
  let refused = 0;
  await page.routeWebSocket(/\/ws\/widget$/, (ws) => {
    if (blocked) {
      refused += 1;
      ws.close({ code: 1011, reason: 'no websockets here' });
    } else {
      ws.connectToServer();
    }
  });
  await openWidget(page, hub);
  await widgetSend(page, 'Do you deliver on Saturdays?'); // over HTTP: there is no socket
  assert.ok(refused >= 1);
  const m = await pendingMessage('Do you deliver on Saturdays?');
  await api(hub, 'POST', `/api/conversations/${m.conversation_id}/replies`, bob.token, { text: 'Yes, from 9 to 1.' });
  // the poll brings the reply
  await page.locator(`${W} .hw-in[data-reply-id] .hw-bubble`, { hasText: 'Yes, from 9 to 1.' }).waitFor({ timeout: 20000 });

  // a reload, the socket still refused: the history is there at once
  await page.reload();
  await page.locator(`${W} .hw-panel:not([hidden])`).waitFor();
  await page.locator(`${W} .hw-out .hw-bubble`, { hasText: 'Do you deliver on Saturdays?' }).waitFor();
  await page.locator(`${W} .hw-in[data-reply-id] .hw-bubble`, { hasText: 'Yes, from 9 to 1.' }).waitFor();

  // the socket is allowed again (the browser says it is online): live, nothing doubled
  blocked = false;
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  await page.locator(`${W} .hw-conn`).waitFor({ state: 'hidden' });
  await api(hub, 'POST', `/api/conversations/${m.conversation_id}/replies`, bob.token, { text: 'And on Sundays in December.' });
  await page.locator(`${W} .hw-in[data-reply-id] .hw-bubble`, { hasText: 'And on Sundays in December.' }).waitFor();
  await widgetSend(page, 'Perfect, thanks!');
  const replies = await page.locator(`${W} .hw-in[data-reply-id]`).evaluateAll((els) => els.map((e) => e.dataset.replyId));
  assert.equal(replies.length, 2);
  assert.equal(new Set(replies).size, 2);
  const mine = await page.locator(`${W} .hw-out .hw-bubble`).allTextContents();
  assert.deepEqual(mine, ['Do you deliver on Saturdays?', 'Perfect, thanks!']);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a bot reply is labelled as the assistant’s, a person’s with the agent’s name', async () => {
  const { hub, browser, bob } = S;
  const bot = await api(hub, 'POST', '/api/assistants', ADMIN_TOKEN, {
    name: 'Helper', rules: [{ match: 'opening hours', reply: 'We are open 9 to 6.' }], transfer_keywords: ['agent'],
  });
  await api(hub, 'POST', `/api/assistants/${bot.id}/publish`, ADMIN_TOKEN, { channels: ['web'] });
  const page = await newPage(browser);
  await openWidget(page, hub);
  await widgetSend(page, 'What are your opening hours?');
  const botReply = page.locator(`${W} .hw-in[data-reply-id]`, { hasText: 'We are open 9 to 6.' });
  await botReply.waitFor();
  assert.match(await botReply.locator('.hw-meta').textContent(), /^Assistant · \d\d:\d\d$/);
  await widgetSend(page, 'I would like an agent please');
  const m = await pendingMessage('I would like an agent please');
  await api(hub, 'POST', `/api/conversations/${m.conversation_id}/replies`, bob.token, { text: 'Hi, Bob here.' });
  const human = page.locator(`${W} .hw-in[data-reply-id]`, { hasText: 'Hi, Bob here.' });
  await human.waitFor();
  // a person's reply says who answered (the widget learns the name from the history)
  await human.locator('.hw-meta', { hasText: /^Bob Stone · \d\d:\d\d$/ }).waitFor();
  await page.reload();
  await human.locator('.hw-meta', { hasText: /^Bob Stone · \d\d:\d\d$/ }).waitFor();
  assert.deepEqual(realProblems(page), []);
});

test('a socket that stops carrying frames is dropped after an unanswered ping, and the widget resumes with since', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  await page.clock.install();
  const sw = { muted: false, hellos: [], sockets: 0 };
  // the first socket's welcome: its first message may be sent (and acknowledged) over
  // HTTP before the socket is up, and a welcome muted away leaves nothing to ping
  const welcomed = new Promise((resolve) => { sw.welcomed = resolve; });
  await page.routeWebSocket(/\/ws\/widget/, (ws) => {
    const server = ws.connectToServer();
    const mine = ++sw.sockets;
    // a network change: the connection stays open, nothing crosses it any more
    const dead = () => sw.muted && mine === 1;
    ws.onMessage((m) => {
      if (dead()) return;
      try {
        const f = JSON.parse(m);
        if (f.type === 'hello') sw.hellos.push(f);
      } catch { /* not JSON */ }
      server.send(m);
    });
    server.onMessage((m) => {
      if (dead()) return;
      if (String(m).includes('"type":"welcome"')) sw.welcomed();
      ws.send(m);
    });
    ws.onClose(() => server.close());
    server.onClose((code, reason) => ws.close({ code, reason }));
  });
  // no history polls: what the customer sees next comes through a socket
  await page.route('**/api/widget/messages*', (route) => (route.request().method() === 'GET' && sw.muted
    ? route.abort('connectionrefused') : route.continue()));
  await openWidget(page, hub);
  await widgetSend(page, 'Is the brass lamp dimmable?');
  await welcomed;
  assert.equal(sw.hellos.length, 1);

  sw.muted = true;
  const conv = (await api(hub, 'GET', '/api/conversations?state=open', bob.token)).items[0].id;
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text: 'Yes, with any dimmer switch.' });
  // the next ping (15 s) goes unanswered for 10 s: the socket is dropped, and another opens
  await page.clock.runFor(15000 + 10000 + 1500);
  await page.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'any dimmer switch' }).waitFor();
  assert.equal(sw.sockets, 2);
  assert.equal(typeof sw.hellos[sw.hellos.length - 1].since, 'number');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('the browser going offline drops the socket at once; back online, the widget resumes', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  await openWidget(page, hub);
  await widgetSend(page, 'Do you ship to Belgium?');
  const conv = (await api(hub, 'GET', '/api/conversations?state=open', bob.token)).items
    .find((c) => c.contact_id).id;
  await page.context().setOffline(true);
  await page.locator('#hub-chat-widget .hw-conn', { hasText: 'Reconnecting' }).waitFor();
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text: 'We ship everywhere in the EU.' });
  await page.context().setOffline(false);
  await page.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'everywhere in the EU' }).waitFor();
  await page.locator('#hub-chat-widget .hw-conn').waitFor({ state: 'hidden' });
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('two tabs of the shop are one visitor: the second adopts the session the first started', async () => {
  const { hub, browser, bob } = S;
  const a = await newPage(browser);
  const b = await a.context().newPage();
  b.problems = [];
  for (const p of [a, b]) await openWidget(p, hub);
  const open = async () => (await api(hub, 'GET', '/api/conversations?state=all', bob.token)).items.length;
  const before = await open();
  await widgetSend(a, 'First tab: is the green vase back?');
  await widgetSend(b, 'Second tab: and the blue one?');
  assert.equal(await open(), before + 1, 'one conversation, one customer');
  // each tab shows both messages (the second tab read the history when it joined)
  await b.bringToFront();
  await b.locator('#hub-chat-widget .hw-out', { hasText: 'First tab' }).waitFor();
  await a.bringToFront();
  await a.locator('#hub-chat-widget .hw-out', { hasText: 'Second tab' }).waitFor();
  await a.reload(); // (the panel stays open: the tab remembers it)
  await a.locator('#hub-chat-widget .hw-out', { hasText: 'First tab' }).waitFor();
  await a.locator('#hub-chat-widget .hw-out', { hasText: 'Second tab' }).waitFor();
  assert.deepEqual(realProblems(a), []);
  assert.deepEqual(realProblems(b), []);
  await a.context().close();
});

test('after an ended session, the earlier exchange is still there when the page is reloaded', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  await openWidget(page, hub);
  await widgetSend(page, 'I need a return label');
  const conv = (await api(hub, 'GET', '/api/conversations?state=open', bob.token)).items[0].id;
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text: 'The label is on its way by e-mail.' });
  await page.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'label is on its way' }).waitFor();
  await api(hub, 'POST', `/api/conversations/${conv}/end-session`, bob.token, {});
  await widgetSend(page, 'One last question');
  await page.reload(); // another page of the shop
  const log = page.locator('#hub-chat-widget .hw-log');
  await log.locator('.hw-out', { hasText: 'One last question' }).waitFor();
  const texts = await log.locator('li').allTextContents();
  const at = (t) => texts.findIndex((x) => x.includes(t));
  assert.ok(at('I need a return label') > 0, texts.join(' | '));
  assert.ok(at('I need a return label') < at('label is on its way'));
  assert.ok(at('label is on its way') < at('New conversation'));
  assert.ok(at('New conversation') < at('One last question'));
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a reloaded widget says why the session ended, as it did live', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  await openWidget(page, hub);
  await widgetSend(page, 'My parcel never came');
  const conv = (await pendingMessage('My parcel never came')).conversation_id;
  const ended = page.locator(`${W} .hw-ended`);
  const reason = ended.locator('.hw-ended-reason');
  await api(hub, 'POST', `/api/conversations/${conv}/end-session`, bob.token, { reason: 'Refund sent: see your e-mail' });
  // live, from the session.ended frame
  await ended.waitFor({ state: 'visible' });
  await reason.filter({ hasText: 'Refund sent: see your e-mail' }).waitFor();
  // another page of the shop: the notice is drawn from the history, reason included
  await page.reload();
  await page.locator(`${W} .hw-log[data-history-loads]`).waitFor({ state: 'attached' });
  await ended.waitFor({ state: 'visible' });
  assert.match(await ended.textContent(), /This conversation has ended/);
  assert.equal(await reason.isVisible(), true, 'the reason after a reload');
  assert.equal(await reason.textContent(), 'Refund sent: see your e-mail');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('unread replies stay counted on the launcher across pages, and reading them in one tab clears the other', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  await openWidget(page, hub);
  await widgetSend(page, 'Is my order shipped?');
  const conv = (await pendingMessage('Is my order shipped?')).conversation_id;
  await page.click(`${W} .hw-close`);
  const badge = page.locator(`${W} .hw-badge`);
  for (const text of ['It left this morning.', 'Tracking: 1Z999.']) {
    await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text });
  }
  await badge.filter({ hasText: /^2$/ }).waitFor();
  // another page of the shop: still two unread
  await page.reload();
  await page.locator(`${W} .hw-in[data-reply-id]`, { hasText: 'Tracking' }).waitFor({ state: 'attached' });
  await badge.filter({ hasText: /^2$/ }).waitFor();
  assert.equal(await badge.isVisible(), true);
  // a second tab reads them: the first one's launcher clears
  const other = await page.context().newPage();
  other.problems = [];
  await openWidget(other, hub);
  await other.locator(`${W} .hw-in[data-reply-id]`, { hasText: 'Tracking' }).waitFor();
  await badge.waitFor({ state: 'hidden' });
  await other.close();
  // and they stay read
  await page.reload();
  await page.locator(`${W} .hw-in[data-reply-id]`, { hasText: 'Tracking' }).waitFor({ state: 'attached' });
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text: 'Anything else?' });
  await badge.filter({ hasText: /^1$/ }).waitFor();
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a reply from another day shows its date with its time', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  await openWidget(page, hub);
  await widgetSend(page, 'Do you ship to Belgium?');
  const conv = (await pendingMessage('Do you ship to Belgium?')).conversation_id;
  const { reply } = await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text: 'Yes, in 3 days.' });
  const meta = page.locator(`${W} .hw-in[data-reply-id]`, { hasText: 'Yes, in 3 days.' }).locator('.hw-meta');
  await meta.filter({ hasText: /^Bob Stone · \d\d:\d\d$/ }).waitFor();
  // two days later, the same page read again
  await page.clock.setFixedTime(new Date(Date.parse(reply.at) + 2 * 86400000));
  await page.reload();
  await meta.filter({ hasText: /, \d\d:\d\d$/ }).waitFor({ state: 'attached' });
  const text = await meta.textContent();
  const day = String(new Date(reply.at).getDate());
  assert.match(text, /^Bob Stone · .+, \d\d:\d\d$/);
  assert.ok(text.replace(/\d\d:\d\d$/, '').includes(day), text);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a reply that comes while the customer reads further up waits below, with a button to it', async () => {
  const { hub, browser, bob } = S;
  const page = await newPage(browser);
  await openWidget(page, hub);
  await widgetSend(page, 'Tell me everything about your lamps');
  const conv = (await pendingMessage('Tell me everything about your lamps')).conversation_id;
  for (let i = 1; i <= 12; i++) {
    await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text: `Lamp fact number ${i}.\nIt is a long one, to fill the panel.` });
  }
  await page.locator(`${W} .hw-in[data-reply-id]`, { hasText: 'Lamp fact number 12' }).waitFor();
  const log = page.locator(`${W} .hw-log`);
  const below = page.locator(`${W} .hw-new-below`);
  assert.equal(await below.isVisible(), false, 'at the bottom, replies scroll into view');
  // the customer scrolls up to read; a reply comes
  await log.evaluate((el) => { el.scrollTop = 0; });
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, bob.token, { text: 'And one more thing.' });
  await below.waitFor();
  assert.equal(await log.evaluate((el) => el.scrollTop), 0, 'not pulled down');
  await below.click();
  await below.waitFor({ state: 'hidden' });
  assert.ok(await log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 60), 'at the reply');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('the widget says whether someone of the team is online, and how fast they reply', async () => {
  const { hub, browser, bob } = S;
  // nobody online: the customer is told, rather than promised a quick answer
  const page = await newPage(browser);
  await openWidget(page, hub);
  await page.locator(`${W} .hw-subtitle:not(.hw-online)`, { hasText: 'Away right now' }).waitFor();

  // an agent signs in: the next visitor sees the team online, with its typical reply time
  const agentPage = await newPage(browser);
  await signIn(agentPage, hub, bob.token);
  const page2 = await newPage(browser);
  await openWidget(page2, hub);
  await page2.locator(`${W} .hw-subtitle.hw-online`, { hasText: /^Online/ }).waitFor();
  const a = await api(hub, 'GET', '/api/widget/availability');
  assert.equal(a.online, true);
  assert.deepEqual(realProblems(page), []);
  assert.deepEqual(realProblems(page2), []);
  for (const p of [page, page2, agentPage]) await p.context().close();
});
