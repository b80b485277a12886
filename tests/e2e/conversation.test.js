// The conversation pane under live traffic: a live event patches the timeline instead of
// rebuilding it, so an open menu stays open and a text selection survives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn, openWidget, widgetSend, openRow, messageCard } from './lib/pages.js';

const S = suite([['ana', 'Ana Lopez'], ['omar', 'Omar Haddad']]);

/** The text selected in the page. */
const selection = (page) => page.evaluate(() => String(window.getSelection()));

test('an open Hold menu and a text selection survive live updates of the conversation', async () => {
  const { hub, browser, ana, omar } = S;
  const widget = await newPage(browser, { viewport: { width: 1100, height: 760 } });
  await openWidget(widget, hub);
  await widgetSend(widget, 'My order number is ORD-77421, it has not arrived.');

  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  await openRow(page, 'ORD-77421');
  const card = messageCard(page, 'ORD-77421');
  await card.locator('[data-action="assign"]').click();
  await card.locator('summary[data-action="hold"]').waitFor();

  // the agent opens the Hold menu, and selects the order number in another item
  await card.locator('summary[data-action="hold"]').click();
  const menu = card.locator('details.menu');
  assert.equal(await menu.evaluate((d) => d.open), true);
  const box = await card.locator('[data-hold="900"]').boundingBox();
  await page.evaluate(() => {
    const bubble = [...document.querySelectorAll('#timeline .bubble.customer')].find((b) => b.textContent.includes('ORD-77421'));
    const text = bubble.firstChild;
    const at = text.data.indexOf('ORD-77421');
    const r = document.createRange();
    r.setStart(text, at);
    r.setEnd(text, at + 'ORD-77421'.length);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
  });
  assert.equal(await selection(page), 'ORD-77421');

  // the customer writes again, a colleague comments: both show up live
  await widgetSend(widget, 'Any news about it?');
  await messageCard(page, 'Any news about it?').waitFor();
  const conv = (await api(hub, 'GET', '/api/conversations?state=open', omar.token)).items[0];
  await api(hub, 'POST', `/api/conversations/${conv.id}/comments`, omar.token, { text: 'I saw this one yesterday' });
  await page.locator('#timeline .tl-comment', { hasText: 'I saw this one yesterday' }).waitFor();

  assert.equal(await menu.evaluate((d) => d.open), true, 'the Hold menu is still open');
  assert.deepEqual(await card.locator('[data-hold="900"]').boundingBox(), box, 'at the same place');
  assert.equal(await selection(page), 'ORD-77421', 'the selection is kept');

  // the menu still works
  await card.locator('[data-hold="900"]').click();
  await card.locator('.badge', { hasText: 'On hold' }).waitFor();
  assert.equal(await page.locator('#timeline .tl-message').count(), 2);
  assert.deepEqual(realProblems(page), []);
  assert.deepEqual(realProblems(widget), []);
});

test('the Assign to… dialog stays open while the customer writes', async () => {
  const { hub, browser, ana } = S;
  const widget = await newPage(browser, { viewport: { width: 1100, height: 760 } });
  await openWidget(widget, hub);
  await widgetSend(widget, 'Please change my delivery address');

  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  await openRow(page, 'delivery address');
  await messageCard(page, 'delivery address').locator('[data-action="assign-to"]').click();
  await page.locator('#dialog[open] select').waitFor();
  await page.selectOption('#dialog select', ana.id);

  await widgetSend(widget, 'to 12 rue de la Paix');
  await messageCard(page, '12 rue de la Paix').waitFor();
  assert.equal(await page.isVisible('#dialog[open]'), true);
  assert.equal(await page.inputValue('#dialog select'), ana.id);
  await page.click('#dialog button[type="submit"]');
  await messageCard(page, 'delivery address').locator('.meta-text', { hasText: 'with Ana Lopez' }).waitFor();
  assert.deepEqual(realProblems(page), []);
});

test('the owner is told when the customer writes back in a conversation not open; others are not', async () => {
  const { hub, browser, ana, omar } = S;
  const widget = await newPage(browser, { viewport: { width: 1100, height: 760 } });
  await openWidget(widget, hub);
  await widgetSend(widget, 'Is the blue jacket in stock?');
  const conv = (await api(hub, 'GET', '/api/conversations?state=open', ana.token)).items.find((c) => !c.owner);
  await api(hub, 'POST', `/api/conversations/${conv.id}/replies`, ana.token, { text: 'Yes, in every size.' });

  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  const other = await newPage(browser);
  await signIn(other, hub, omar.token);
  await page.click('#folders a[data-folder="answered"]');
  await page.locator('#list-title', { hasText: 'Answered' }).waitFor();

  await widgetSend(widget, 'Great, and in green?');
  const note = page.locator('#toasts .toast', { hasText: 'wrote back in your conversation' });
  await note.waitFor();
  assert.match(await note.locator('.toast-text').textContent(), /“Great, and in green\?”/);
  await note.locator('.toast-action', { hasText: 'Open' }).click();
  await messageCard(page, 'and in green?').waitFor();
  assert.equal(await page.locator('#conv-view').getAttribute('data-id'), conv.id);
  assert.equal(await page.locator('#list-title').textContent(), 'Answered');

  // with the conversation open: no notice; a colleague who does not own it: none either
  await widgetSend(widget, 'Size M please');
  await messageCard(page, 'Size M please').waitFor();
  await page.waitForTimeout(300);
  assert.equal(await page.locator('#toasts .toast', { hasText: 'wrote back' }).count(), 0);
  assert.equal(await other.locator('#toasts .toast', { hasText: 'wrote back' }).count(), 0);

  // a notice goes once its conversation is opened, however it was opened
  await page.click('#folders a[data-folder="answered"]');
  await page.locator('#conv-pane .conv-empty').waitFor();
  await widgetSend(widget, 'One more thing');
  await note.waitFor();
  await page.evaluate((id) => { location.hash = `#/inbox/answered/c/${encodeURIComponent(id)}`; }, conv.id);
  await messageCard(page, 'One more thing').waitFor();
  assert.equal(await page.locator('#toasts .toast', { hasText: 'wrote back' }).count(), 0);
  assert.deepEqual(realProblems(page), []);
  assert.deepEqual(realProblems(other), []);
});

test('the Activities tab lists the conversation\'s events newest first, as sentences, live', async () => {
  const { hub, browser, ana, omar } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const first = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Where is parcel 5531?' });
  await api(hub, 'POST', `/api/messages/${first.message.id}/assign`, omar.token);
  await api(hub, 'POST', `/api/conversations/${first.message.conversation_id}/replies`, omar.token, { text: 'Checking now.' });

  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  await page.click('#folders a[data-folder="answered"]');
  await openRow(page, 'parcel 5531');
  await page.click('#conv-tab-activities');
  assert.equal(await page.getAttribute('#conv-tab-activities', 'aria-selected'), 'true');
  assert.equal(await page.isVisible('#timeline'), false);
  const rows = page.locator('#activities .activity');
  await rows.first().waitFor();
  const texts = await rows.locator('.activity-text').allTextContents();
  const seqs = await rows.evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'newest first');
  // (the conversation's only message is "the message", as in the timeline)
  assert.equal(texts[0], 'Omar Haddad answered the message');
  assert.ok(texts.includes('Omar Haddad replied “Checking now.”'), texts.join('\n'));
  assert.ok(texts.includes('Omar Haddad now owns this conversation'), texts.join('\n'));
  assert.ok(texts.includes('Omar Haddad took the message'), texts.join('\n'));
  assert.ok(texts.some((t) => /^Visitor \w+ wrote “Where is parcel 5531\?”$/.test(t)), texts.join('\n'));
  assert.equal(texts[texts.length - 1], 'Conversation opened');

  // live: the customer writes, a colleague comments; each lands on top
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Still nothing.' });
  await rows.first().locator('.activity-text', { hasText: 'wrote “Still nothing.”' }).waitFor();
  await api(hub, 'POST', `/api/conversations/${first.message.conversation_id}/comments`, omar.token, { text: 'carrier delay' });
  await rows.first().locator('.activity-text', { hasText: 'Omar Haddad added an internal comment “carrier delay”' }).waitFor();
  const n = await rows.count();
  assert.equal(new Set(await rows.evaluateAll((els) => els.map((e) => e.dataset.seq))).size, n, 'each event once');

  // back to the conversation
  await page.click('#conv-tab-timeline');
  await messageCard(page, 'Still nothing.').waitFor();
  assert.equal(await page.isVisible('#activities'), false);
  assert.deepEqual(realProblems(page), []);
});

test('a conversation whose load is slow shows what happened meanwhile, even under heavy traffic', async () => {
  const { hub, browser, ana, omar } = S;
  const s1 = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const first = await api(hub, 'POST', '/api/widget/messages', s1.token, { text: 'Slow load parcel 6620' });
  const convId = first.message.conversation_id;
  const s2 = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const busy = await api(hub, 'POST', '/api/widget/messages', s2.token, { text: 'Busy conversation 3391' });

  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  await page.locator('#list .row', { hasText: 'Slow load parcel 6620' }).waitFor();

  // the conversation's snapshot is taken at once but delivered late
  let gotSnapshot;
  const snapshotTaken = new Promise((r) => { gotSnapshot = r; });
  let release;
  const released = new Promise((r) => { release = r; });
  const theConversation = (url) => url.pathname === `/api/conversations/${convId}`;
  await page.route(theConversation, async (route) => {
    const response = await route.fetch();
    gotSnapshot();
    await released;
    await route.fulfill({ response });
  });
  await page.locator('#list .row', { hasText: 'Slow load parcel 6620' }).first().click();
  await snapshotTaken;

  // meanwhile the message is assigned and archived, then 2,000 events happen elsewhere
  await api(hub, 'POST', `/api/messages/${first.message.id}/assign`, ana.token);
  await api(hub, 'POST', `/api/messages/${first.message.id}/archive`, ana.token);
  for (let i = 0; i < 2000; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, k) => api(hub, 'POST', `/api/conversations/${busy.message.conversation_id}/comments`, omar.token, { text: `note ${i + k}` })));
  }
  // a last event, seen in the list once the console has received everything before it
  const s3 = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', s3.token, { text: 'Flood marker 7781' });
  await page.locator('#list .row', { hasText: 'Flood marker 7781' }).waitFor();

  release();
  const card = messageCard(page, 'Slow load parcel 6620');
  await card.waitFor();
  await card.locator('.badge', { hasText: 'Archived' }).waitFor();
  assert.equal(await card.locator('[data-action="assign"]').count(), 0);
  assert.equal(await card.locator('[data-action="hold"]').count(), 0);
  await page.unroute(theConversation);
  assert.deepEqual(realProblems(page), []);
});

test('Escape closes the open Hold menu and gives focus back to its summary', async () => {
  const { hub, browser, ana } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Escape-key parcel 8812' });

  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  await openRow(page, 'Escape-key parcel 8812');
  const card = messageCard(page, 'Escape-key parcel 8812');
  await card.locator('[data-action="assign"]').click();
  const summary = card.locator('summary[data-action="hold"]');
  await summary.waitFor();
  const menu = card.locator('details.menu');

  // opened by keyboard, focus on an item: Escape closes it, focus on the summary
  await summary.focus();
  await page.keyboard.press('Enter');
  assert.equal(await menu.evaluate((d) => d.open), true);
  await card.locator('[data-hold="900"]').focus();
  await page.keyboard.press('Escape');
  assert.equal(await menu.evaluate((d) => d.open), false);
  assert.equal(await summary.evaluate((el) => el === document.activeElement), true);

  // opened by mouse: Escape closes it too
  await summary.click();
  assert.equal(await menu.evaluate((d) => d.open), true);
  await page.keyboard.press('Escape');
  assert.equal(await menu.evaluate((d) => d.open), false);
  assert.equal(await summary.evaluate((el) => el === document.activeElement), true);
  assert.deepEqual(realProblems(page), []);
});

test('an agent reply bubble is set like the other bubbles, not like the logo', async () => {
  const { hub, browser, ana } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const first = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Bubble font check 4410' });
  await api(hub, 'POST', `/api/conversations/${first.message.conversation_id}/replies`, ana.token, { text: 'Reply bubble text' });

  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  await page.click('#folders a[data-folder="answered"]');
  await page.locator('#list-title', { hasText: 'Answered' }).waitFor();
  await openRow(page, 'Bubble font check 4410');
  const style = (sel) => page.locator(sel).first().evaluate((el) => {
    const cs = getComputedStyle(el);
    return { weight: cs.fontWeight, size: cs.fontSize, display: cs.display };
  });
  const reply = page.locator('#timeline .tl-reply .bubble', { hasText: 'Reply bubble text' });
  await reply.waitFor();
  const r = await style('#timeline .tl-reply .bubble.brand');
  const c = await style('#timeline .bubble.customer');
  assert.equal(r.weight, c.weight, 'same weight as a customer bubble');
  assert.equal(r.size, c.size, 'same size as a customer bubble');
  assert.notEqual(r.weight, '700');
  assert.notEqual(r.display, 'flex');
  // the logo keeps its own style
  const logo = await style('#app .brand');
  assert.equal(logo.weight, '700');
  assert.equal(logo.display, 'flex');
  await reply.screenshot({ path: `${process.cwd()}/../artifacts/reply-bubble.png` });
  assert.deepEqual(realProblems(page), []);
});

test('a colleague\'s reply arriving while I write one is pointed out', async () => {
  const { hub, browser, ana, omar } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const m = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Can I pay in three instalments?' });
  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  await openRow(page, 'three instalments');
  await page.fill('#reply-input', 'Yes, from 300 euros');
  await api(hub, 'POST', `/api/conversations/${m.message.conversation_id}/replies`, omar.token, { text: 'Yes you can.' });
  await page.locator('#timeline .tl-reply', { hasText: 'Yes you can.' }).waitFor();
  await page.locator('.composer-error', { hasText: 'Omar Haddad just replied to this customer' }).waitFor();
  assert.equal(await page.inputValue('#reply-input'), 'Yes, from 300 euros', 'the draft is kept');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a customer who gave the widget a name and an email is shown by them', async () => {
  const { hub, browser, ana } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, { name: 'Léa Dubois', email: 'lea@example.com' });
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'My invoice shows the wrong address' });
  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  // named in the list already, before anyone opened the conversation
  await page.locator('#list .row', { hasText: 'wrong address' }).locator('.row-who', { hasText: 'Léa Dubois' }).waitFor();
  await openRow(page, 'wrong address');
  await page.locator('#conv-head h2', { hasText: 'Léa Dubois' }).waitFor();
  await page.locator('#conv-head .contact-email', { hasText: 'lea@example.com' }).waitFor();
  await page.locator('#timeline .tl-message .tl-who', { hasText: 'Léa Dubois' }).waitFor();
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a very long customer message is folded so its actions stay in reach, and unfolds on demand', async () => {
  const { hub, browser, ana } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  const long = `Long story about order 4471. ${'The parcel went to the wrong depot and back. '.repeat(60)}End of story.`;
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: long });
  const page = await newPage(browser);
  await signIn(page, hub, ana.token);
  await openRow(page, 'Long story about order 4471');
  const card = messageCard(page, 'Long story about order 4471');
  const bubble = card.locator('.bubble.customer');
  await bubble.waitFor();
  assert.equal(await bubble.evaluate((b) => b.classList.contains('folded')), true);
  const folded = (await bubble.boundingBox()).height;
  assert.ok(await card.locator('[data-action="assign"]').isVisible(), 'the actions are in sight');
  await card.locator('.fold-toggle', { hasText: 'Show all' }).click();
  assert.equal(await bubble.evaluate((b) => b.classList.contains('folded')), false);
  assert.ok((await bubble.boundingBox()).height > folded * 2, 'unfolded');
  // unfolded it stays, through a live update of the conversation
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Any news?' });
  await messageCard(page, 'Any news?').waitFor();
  assert.equal(await bubble.evaluate((b) => b.classList.contains('folded')), false);
  assert.equal(await bubble.textContent(), long, 'the whole text is there');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});
