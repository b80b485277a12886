// The "All" conversations list (seed 003, "Toutes"): after Open / Closed / Spam, it gathers
// every conversation, the bot-handled ones included, each row marked with its state:
// a conversation the bot answers alone is "Bot only", a closed one "Closed", a spam one
// "Spam". The list updates live, like the others.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent, api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, shot, realProblems } from './lib/browser.js';
import { signIn } from './lib/pages.js';

const S = suite([['alice', 'Alice Martin']]);

async function customerWrites(channel, text) {
  const s = await api(S.hub, 'POST', '/api/widget/session', undefined, { channel });
  const m = await api(S.hub, 'POST', '/api/widget/messages', s.token, { text });
  return m.message.conversation_id;
}

test('All lists bot-only, closed and spam conversations live, each marked with its state', async () => {
  const { hub, browser, alice } = S;
  const bot = await api(hub, 'POST', '/api/assistants', ADMIN_TOKEN, {
    name: 'Lumi',
    rules: [{ match: 'opening hours', reply: 'Our shop is open from 9 to 18, Monday to Saturday.' }],
    transfer_keywords: ['human'],
  });
  await api(hub, 'POST', `/api/assistants/${bot.id}/publish`, ADMIN_TOKEN, { channels: ['shop'] });

  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  // the link comes after Open, Closed and Spam
  assert.deepEqual(await page.locator('#conv-states a').evaluateAll((els) => els.map((e) => e.dataset.state)), ['open', 'closed', 'spam', 'all']);
  assert.deepEqual(await page.locator('#conv-states a .nav-label').allTextContents(), ['Open', 'Closed', 'Spam', 'All']);
  await page.click('#conv-states a[data-state="all"]');
  await page.waitForFunction(() => location.hash === '#/conversations/all');
  assert.equal(await page.textContent('#list-title'), 'All conversations');
  await page.locator('#list .list-empty', { hasText: 'No conversations yet.' }).waitFor();
  assert.equal(await page.getAttribute('#conv-states a[data-state="all"]', 'aria-current'), 'page');

  // while the list is shown: the bot answers one alone, one is closed, one is spam
  const botConv = await customerWrites('shop', 'What are your opening hours?');
  const closedConv = await customerWrites('web', 'Where is my parcel?');
  await api(hub, 'POST', `/api/conversations/${closedConv}/close`, alice.token, { notes: 'answered by phone' });
  const spamConv = await customerWrites('web', 'Cheap watches, click here');
  await api(hub, 'POST', `/api/conversations/${spamConv}/spam`, alice.token, { spam: true });

  const row = (id) => page.locator(`#list .row[data-conversation-id="${id}"]`);
  const botRow = row(botConv);
  await botRow.locator('.badge.c-bot', { hasText: 'Bot only' }).waitFor();
  assert.equal(await botRow.getAttribute('data-bot-only'), 'true');
  assert.equal(await botRow.locator('.badge.c-open').textContent(), 'Open');

  const closedRow = row(closedConv);
  await closedRow.locator('.badge.c-closed', { hasText: 'Closed' }).waitFor();
  assert.equal(await closedRow.getAttribute('data-state'), 'closed');
  assert.equal(await closedRow.locator('.badge.c-bot').count(), 0);
  assert.equal(await closedRow.locator('.badge.c-spam').count(), 0);

  const spamRow = row(spamConv);
  await spamRow.locator('.badge.c-spam', { hasText: 'Spam' }).waitFor();
  assert.equal(await spamRow.getAttribute('data-spam'), 'true');
  assert.equal(await spamRow.locator('.badge.c-bot').count(), 0);
  assert.equal(await page.locator('#list .row').count(), 3);
  // each list says how many conversations it holds
  const counts = () => page.locator('#conv-states a .count').allTextContents();
  const countsAre = (want) => page.waitForFunction((w) => [...document.querySelectorAll('#conv-states a .count')]
    .map((e) => e.textContent).join(',') === w, want.join(','));
  await countsAre(['1', '1', '1', '3']);
  await shot(page, 'console-conversations-all');

  // Open has neither the closed nor the spam one (the hub counts a bot-handled conversation
  // as open: it shows there, marked Bot only)
  await page.click('#conv-states a[data-state="open"]');
  await page.locator('#list-title', { hasText: 'Open conversations' }).waitFor();
  await row(botConv).locator('.badge.c-bot', { hasText: 'Bot only' }).waitFor();
  assert.equal(await row(closedConv).count(), 0);
  assert.equal(await row(spamConv).count(), 0);

  // once a human takes over, the conversation is no longer bot-only, in All too
  await page.click('#conv-states a[data-state="all"]');
  await row(closedConv).waitFor();
  const s2 = await api(hub, 'POST', '/api/widget/session', undefined, { channel: 'shop' });
  const m2 = await api(hub, 'POST', '/api/widget/messages', s2.token, { text: 'I want a human please' });
  const handedConv = m2.message.conversation_id;
  await row(handedConv).waitFor();
  await row(handedConv).locator('.badge.c-open').waitFor();
  await page.waitForFunction((id) => document.querySelector(`#list .row[data-conversation-id="${id}"]`)?.dataset.botOnly === 'false', handedConv);
  assert.equal(await page.locator('#list .row').count(), 4);
  await countsAre(['2', '1', '1', '4']);

  // the counts stay live on an inbox folder too
  await page.click('#folders a[data-folder="pending"]');
  await page.locator('#list .row', { hasText: 'I want a human please' }).waitFor();
  await customerWrites('web', 'Do you sell gift cards?');
  await page.locator('#list .row', { hasText: 'gift cards' }).waitFor();
  await countsAre(['3', '1', '1', '5']);
  await api(hub, 'POST', `/api/conversations/${spamConv}/spam`, alice.token, { spam: false });
  await countsAre(['4', '1', '0', '5']);
  assert.deepEqual(await counts(), ['4', '1', '0', '5']);

  await api(hub, 'POST', `/api/assistants/${bot.id}/unpublish`, ADMIN_TOKEN, {});
  assert.deepEqual(realProblems(page), []);
});

test('a folder can be worked oldest first, paged with Load newer, and the choice is kept', async () => {
  const { hub, browser, alice } = S;
  for (let i = 1; i <= 55; i++) await customerWrites('queue', `Queue question number ${String(i).padStart(2, '0')}`);
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.click('#folders a[data-folder="pending"]');
  const first = () => page.locator('#list .row').first().textContent();
  await page.locator('#list .row', { hasText: 'number 55' }).waitFor();
  assert.match(await first(), /number 55/, 'newest first by default');

  await page.selectOption('#list-order', 'oldest');
  // (earlier tests left a message or two pending before these)
  const numbers = async () => (await page.locator('#list .row').allTextContents())
    .map((t) => t.match(/number (\d\d)/)).filter(Boolean).map((m) => Number(m[1]));
  await page.locator('#list .row', { hasText: 'number 01' }).waitFor();
  assert.equal(await page.locator('#list .row').count(), 50);
  let seen = await numbers();
  assert.deepEqual(seen, seen.map((_, i) => i + 1), 'oldest first, from the first');
  await page.click('#list-more button', { hasText: 'Load newer' });
  await page.locator('#list .row', { hasText: 'number 55' }).waitFor();
  seen = await numbers();
  assert.deepEqual(seen, Array.from({ length: 55 }, (_, i) => i + 1), 'every one once, oldest first');

  // a reload keeps the order
  await page.reload();
  await page.waitForSelector('#conn.conn-live');
  await page.locator('#list .row', { hasText: 'number 01' }).waitFor();
  assert.equal(await page.inputValue('#list-order'), 'oldest');
  assert.equal((await numbers())[0], 1);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a conversation row previews its latest message, reply or comment, updated live without reading the list again', async () => {
  const { hub, browser, alice } = S;
  const bob = await createAgent(hub, 'Bob Stone', 'agent');
  const s = await api(hub, 'POST', '/api/widget/session', undefined, { channel: 'preview', name: 'Zoé Petit' });
  const first = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'My order   #123 never arrived' });
  const conv = first.message.conversation_id;
  // Alice owns it before the console opens: the events below change no row but its preview
  await api(hub, 'POST', `/api/messages/${first.message.id}/assign`, alice.token, {});

  const page = await newPage(browser);
  const lists = [];
  // (a read of one conversation, `limit=1`, is for the lists' counts only)
  page.on('request', (r) => { if (r.url().includes('/api/conversations?') && !/[?&]limit=1(&|$)/.test(r.url())) lists.push(r.url()); });
  await signIn(page, hub, alice.token);
  await page.click('#conv-states a[data-state="open"]');
  const row = page.locator(`#list .row[data-conversation-id="${conv}"]`);
  const preview = row.locator('.row-text');
  await preview.filter({ hasText: 'My order #123 never arrived' }).waitFor();
  assert.ok(lists.every((u) => u.includes('preview=true')), lists.join(' '));

  const before = lists.length;
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, alice.token, { text: 'We are on it.' });
  await preview.filter({ hasText: 'You: We are on it.' }).waitFor();
  await api(hub, 'POST', `/api/conversations/${conv}/comments`, bob.token, { text: 'Checking with the courier' });
  await preview.filter({ hasText: 'Note by Bob Stone: Checking with the courier' }).waitFor();
  assert.equal(await row.locator('.row-text.preview-comment').count(), 1);
  await shot(page, 'console-conversation-previews');
  const pendingCount = page.locator('#folders a[data-folder="pending"] .count');
  const pending = Number(await pendingCount.textContent());
  const long = 'é'.repeat(200);
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: long });
  await preview.filter({ hasText: `${'é'.repeat(160)}…` }).waitFor();
  // the sidebar's counts follow (the new message is pending) ...
  await page.waitForFunction((n) => document.querySelector('#folders a[data-folder="pending"] .count')?.textContent === String(n), pending + 1);
  // ... but the list was not read again for any of these
  assert.equal(lists.length, before, lists.slice(before).join(' '));

  // a reload shows the same preview, from the hub
  await page.reload();
  await page.waitForSelector('#conn.conn-live');
  await preview.filter({ hasText: `${'é'.repeat(160)}…` }).waitFor();
  assert.equal(await row.locator('.preview-who').count(), 0, 'the customer\'s own message has no author prefix');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('the Customer tab shows who the customer is and every conversation they had, an ended one included', async () => {
  const { hub, browser, alice } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, { channel: 'profile', name: 'Léa Roux', email: 'lea@example.com' });
  const m1 = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Where is my parcel?' });
  const c1 = m1.message.conversation_id;
  await api(hub, 'POST', `/api/conversations/${c1}/replies`, alice.token, { text: 'It left our warehouse today.' });
  await api(hub, 'POST', `/api/conversations/${c1}/end-session`, alice.token, { reason: 'done' });
  const m2 = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'It never came' });
  const c2 = m2.message.conversation_id;
  assert.notEqual(c1, c2);

  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.goto(`${hub.url}/#/conversations/open/c/${encodeURIComponent(c2)}`);
  await page.locator('#timeline', { hasText: 'It never came' }).waitFor();
  await page.click('#conv-tab-customer');
  const tab = page.locator('#customer');
  await tab.locator('h3', { hasText: 'Léa Roux' }).waitFor();
  assert.match(await tab.locator('.customer-facts').textContent(), /lea@example\.com/);
  await tab.locator('.customer-convs-title', { hasText: 'this one and 1 other' }).waitFor();
  const rows = tab.locator('.customer-convs .row');
  assert.equal(await rows.count(), 2);
  assert.equal(await rows.nth(0).getAttribute('data-conversation-id'), c2, 'newest first');
  await rows.nth(0).locator('.badge.c-this').waitFor();
  assert.equal(await rows.nth(1).getAttribute('data-conversation-id'), c1);
  await rows.nth(1).locator('.badge.c-ended', { hasText: 'Session ended' }).waitFor();
  assert.match(await rows.nth(1).locator('.row-text').textContent(), /You: It left our warehouse today\./);

  // live: the customer writes again; the tab follows
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Any news?' });
  await rows.nth(0).locator('.row-text', { hasText: 'Any news?' }).waitFor();
  await shot(page, 'console-customer-tab');

  // the earlier conversation opens from there
  await rows.nth(1).click();
  await page.waitForFunction((id) => location.hash.endsWith(`/c/${encodeURIComponent(id)}`), c1);
  await page.locator('#timeline', { hasText: 'It left our warehouse today.' }).waitFor();
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a list read while a customer writes still shows their latest words, and the Customer tab is read again when shown', async () => {
  const { hub, browser, alice } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, { channel: 'race', name: 'Nora Lind' });
  const m1 = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'First words' });
  const conv = m1.message.conversation_id;
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.click('#conv-states a[data-state="open"]');
  const preview = page.locator(`#list .row[data-conversation-id="${conv}"] .row-text`);
  await preview.filter({ hasText: 'First words' }).waitFor();

  // the next list read is held until a newer message has arrived live
  let release;
  const held = new Promise((r) => { release = r; });
  let fetched;
  const readOnce = new Promise((r) => { fetched = r; });
  await page.route('**/api/conversations?*', async (route) => {
    const answer = await route.fetch(); // the list as it stood before the message below
    fetched(await answer.json());
    await held;
    await route.fulfill({ response: answer });
  }, { times: 1 });
  await api(hub, 'POST', `/api/conversations/${conv}/spam`, alice.token, { spam: true });
  await api(hub, 'POST', `/api/conversations/${conv}/spam`, alice.token, { spam: false });
  const stale = await readOnce;
  assert.equal(stale.items.find((c) => c.id === conv).preview.text, 'First words');
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Newer words' });
  await preview.filter({ hasText: 'Newer words' }).waitFor();
  // the older answer lands and is drawn: the row keeps the newer words
  const landed = page.waitForResponse((r) => r.url().includes('/api/conversations?'));
  release();
  await landed;
  await page.evaluate(() => new Promise((r) => setTimeout(() => requestAnimationFrame(() => r()), 0)));
  await page.locator(`#list .row[data-conversation-id="${conv}"]`).waitFor();
  assert.match(await preview.textContent(), /Newer words/);

  // the Customer tab, hidden while the conversation moved on, is read again when shown
  await page.goto(`${hub.url}/#/conversations/open/c/${encodeURIComponent(conv)}`);
  await page.click('#conv-tab-customer');
  const row = page.locator('#customer .customer-convs .row').first();
  await row.locator('.row-text', { hasText: 'Newer words' }).waitFor();
  await page.click('#conv-tab-timeline');
  await api(hub, 'POST', `/api/conversations/${conv}/replies`, alice.token, { text: 'Answered while hidden' });
  await page.locator('#timeline', { hasText: 'Answered while hidden' }).waitFor();
  await page.click('#conv-tab-customer');
  await row.locator('.row-text', { hasText: 'You: Answered while hidden' }).waitFor();
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a newly opened conversation starts on Reply, whatever tab the last one was left on', async () => {
  const { hub, browser, alice } = S;
  const a = await customerWrites('tabs', 'First customer');
  const b = await customerWrites('tabs', 'Second customer');
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.goto(`${hub.url}/#/conversations/open/c/${encodeURIComponent(a)}`);
  await page.locator('#timeline', { hasText: 'First customer' }).waitFor();
  await page.click('.composer-tabs [data-mode="comment"]');
  await page.fill('#comment-input', 'a note for the first');
  await page.click('#composer-send');
  await page.locator('#timeline .tl-comment', { hasText: 'a note for the first' }).waitFor();
  await page.goto(`${hub.url}/#/conversations/open/c/${encodeURIComponent(b)}`);
  await page.locator('#timeline', { hasText: 'Second customer' }).waitFor();
  assert.equal(await page.getAttribute('.composer', 'data-mode'), 'reply');
  assert.equal(await page.isVisible('#reply-input'), true);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a conversation list longer than a page shows the rest with Load older', async () => {
  const { hub, browser, alice } = S;
  const before = (await api(hub, 'GET', '/api/conversations?state=open', alice.token)).items.length;
  const extra = 1005 - before;
  for (let i = 0; i < extra; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, extra - i) }, (_, j) => customerWrites('bulk', `Bulk question ${i + j}`)));
  }
  const all = (await api(hub, 'GET', '/api/conversations?state=open', alice.token)).items;
  assert.equal(all.length, 1005);
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.click('#conv-states a[data-state="open"]');
  await page.locator(`#list .row[data-conversation-id="${all[999].id}"]`).waitFor({ state: 'attached' });
  assert.equal(await page.locator('#list .row').count(), 1000);
  await page.click('#list-more button', { hasText: 'Load older' });
  await page.locator(`#list .row[data-conversation-id="${all[1004].id}"]`).waitFor({ state: 'attached' });
  assert.equal(await page.locator('#list .row').count(), 1005);
  assert.equal(await page.locator('#list-more button').count(), 0, 'nothing older');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('conversation lists put the latest activity first, or the newest opened, and keep the choice', async () => {
  const { hub, browser, alice } = S;
  const first = await customerWrites('order', 'Opened first');
  const second = await customerWrites('order', 'Opened second');
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.click('#conv-states a[data-state="open"]');
  // (the click's render is awaited: isVisible does not wait)
  await page.locator('#conv-order').waitFor({ state: 'visible' });
  assert.equal(await page.isVisible('#list-order'), false);
  assert.equal(await page.inputValue('#conv-order'), 'activity');
  const ids = () => page.locator('#list .row').evaluateAll((els) => els.map((e) => e.dataset.conversationId));
  const rank = async (id) => (await ids()).indexOf(id);
  await page.locator(`#list .row[data-conversation-id="${first}"]`).waitFor({ state: 'attached' });
  assert.ok(await rank(second) < await rank(first), 'the later one first');

  // a reply in the first conversation: it comes first, live
  await api(hub, 'POST', `/api/conversations/${first}/replies`, alice.token, { text: 'Back to you first' });
  await page.waitForFunction((id) => document.querySelector('#list .row')?.dataset.conversationId === id, first);

  await page.selectOption('#conv-order', 'opened');
  await page.waitForFunction(([a, b]) => {
    const rows = [...document.querySelectorAll('#list .row')].map((e) => e.dataset.conversationId);
    return rows.indexOf(b) < rows.indexOf(a);
  }, [first, second]);
  await page.reload();
  await page.waitForSelector('#conn.conn-live');
  await page.locator(`#list .row[data-conversation-id="${first}"]`).waitFor({ state: 'attached' });
  assert.equal(await page.inputValue('#conv-order'), 'opened');
  assert.ok(await rank(second) < await rank(first), 'newest opened first, kept');
  // the folders keep their own order choice
  await page.click('#folders a[data-folder="pending"]');
  await page.locator('#list-title', { hasText: 'Pending' }).waitFor();
  await page.locator('#list-order').waitFor({ state: 'visible' });
  assert.equal(await page.isVisible('#conv-order'), false);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a hold of mine that ended while no console of mine was open is told at the next start', async () => {
  const { hub, browser } = S;
  // an agent of her own: consoles of Alice's stay open in this file
  const zoe = await createAgent(hub, 'Zoe Martel', 'agent');
  const s = await api(hub, 'POST', '/api/widget/session', undefined, { channel: 'away', name: 'Hugo Blanc' });
  const m = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Call me back tomorrow' });
  await api(hub, 'POST', `/api/messages/${m.message.id}/assign`, zoe.token, {});
  await api(hub, 'POST', `/api/messages/${m.message.id}/hold`, zoe.token, { for_seconds: 2 });

  const page = await newPage(browser);
  await signIn(page, hub, zoe.token);
  await page.click('#folders a[data-folder="on_hold"]');
  await page.locator('#list .row', { hasText: 'Call me back tomorrow' }).waitFor();
  const context = page.context();
  await page.close(); // Zoe goes home: no console of hers (the test hub's grace is 0)

  // the hold ends with nobody present: the message goes back to Pending (§6.1)
  const deadline = Date.now() + 15000;
  let status;
  do {
    await new Promise((r) => setTimeout(r, 200));
    const conv = await api(hub, 'GET', `/api/conversations/${m.message.conversation_id}`, zoe.token);
    status = conv.timeline.find((it) => it.id === m.message.id).status;
  } while (status !== 'pending' && Date.now() < deadline);
  assert.equal(status, 'pending');

  // the next morning, in the same browser
  const next = await context.newPage();
  next.problems = [];
  await signIn(next, hub, zoe.token);
  const notice = next.locator('#toasts .toast', { hasText: 'While you were away, your hold on Hugo Blanc’s message ended: it went back to Pending' });
  await notice.waitFor();
  await notice.locator('.toast-action', { hasText: 'Open' }).click();
  await next.locator('#timeline', { hasText: 'Call me back tomorrow' }).waitFor();
  // told once: a reload says nothing more
  await next.reload();
  await next.waitForSelector('#conn.conn-live');
  await next.locator('#folders a[data-folder="pending"] .count', { hasText: /\d/ }).waitFor();
  assert.equal(await next.locator('#toasts .toast', { hasText: 'While you were away' }).count(), 0);
  await context.close();
});
