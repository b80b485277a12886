// The widget without its socket (a proxy that refuses WebSockets): the history is read at
// start and polled, so replies still appear, and nothing is doubled once the socket is
// back. A bot's reply is labelled as the assistant's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, createAgent, api, reportFailures, ADMIN_TOKEN } from './lib/hub.js';
import { launch, newPage, realProblems } from './lib/browser.js';
import { openWidget, widgetSend } from './lib/pages.js';

let hub;
reportFailures(() => hub);
let browser;
let bob;

before(async () => {
  hub = await startHub();
  browser = await launch();
  bob = await createAgent(hub, 'Bob Stone', 'agent');
});

after(async () => {
  await browser?.close();
  await hub?.stop();
});

const W = '#hub-chat-widget';

async function pendingMessage(text) {
  const data = await api(hub, 'GET', '/api/inbox?folder=pending', bob.token);
  return data.items.find((m) => m.text === text);
}

test('with its socket refused, the widget shows the history and polls for replies; no doubles when it is back', async () => {
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

test('a bot reply is labelled as the assistant’s, a person’s is not', async () => {
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
  assert.match(await human.locator('.hw-meta').textContent(), /^\d\d:\d\d$/);
  assert.deepEqual(realProblems(page), []);
});
