// A customer writes in the widget → the message shows in the console's Pending folder
// live → the agent assigns and replies → the widget shows the reply; then the agent ends
// the session and the widget says so; the next message starts a new conversation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent, api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, shot, realProblems } from './lib/browser.js';
import { signIn, openWidget, widgetSend, folderCount, openRow, messageCard } from './lib/pages.js';

const S = suite([['alice', 'Alice Martin'], ['samir', 'Samir Haddad', 'supervisor']]);

let agentPage;
let widgetPage;

test('a customer message reaches Pending live; the agent assigns and replies; the widget shows the reply', async () => {
  const { hub, browser, alice } = S;
  agentPage = await newPage(browser);
  await signIn(agentPage, hub, alice.token);
  assert.equal(await agentPage.textContent('#me .me-name'), 'Alice Martin');
  await agentPage.waitForSelector('#list .list-empty');
  assert.equal(await folderCount(agentPage, 'pending'), '0');
  // Alice is online, and sees it
  await agentPage.waitForSelector('#team .team-item[data-presence="online"] >> text=Alice Martin (you)');

  widgetPage = await newPage(browser, { viewport: { width: 1100, height: 760 } });
  await openWidget(widgetPage, hub);
  const text = 'Hello, my Arc floor lamp arrived with a broken shade. Order #1042.';
  await widgetSend(widgetPage, text);
  const sentAt = Date.now();

  const row = agentPage.locator('#list .row', { hasText: 'broken shade' });
  await row.waitFor({ timeout: 3000 });
  const latency = Date.now() - sentAt;
  assert.ok(latency < 1500, `the message took ${latency} ms to show`);
  assert.equal(await row.locator('.badge').textContent(), 'Pending');
  await agentPage.waitForFunction(() => document.querySelector('#folders a[data-folder="pending"] .count')?.textContent === '1');

  await openRow(agentPage, 'broken shade');
  const card = messageCard(agentPage, 'broken shade');
  await card.locator('.badge', { hasText: 'Pending' }).waitFor();
  // only the actions pending allows: assign (agents can't assign others)
  assert.deepEqual(await card.locator('.msg-actions [data-action]').evaluateAll((els) => els.map((e) => e.dataset.action)), ['assign']);
  await card.locator('[data-action="assign"]').click();
  await card.locator('.badge', { hasText: 'Assigned' }).waitFor();
  assert.deepEqual(
    await card.locator('.msg-actions [data-action]').evaluateAll((els) => els.map((e) => e.dataset.action)),
    ['hold', 'request-help', 'archive', 'unassign'],
  );
  await agentPage.locator('#timeline .tl-event', { hasText: 'You took the message' }).waitFor();
  await agentPage.waitForFunction(() => document.querySelector('#folders a[data-folder="mine"] .count')?.textContent === '1');

  const reply = 'So sorry! A new shade leaves our workshop today; you will get the tracking number by email.';
  await agentPage.fill('#reply-input', reply);
  await agentPage.press('#reply-input', 'Enter');
  await agentPage.locator('#timeline .tl-reply', { hasText: 'new shade leaves' }).waitFor();
  await card.locator('.badge', { hasText: 'Answered' }).waitFor();
  assert.equal(await agentPage.inputValue('#reply-input'), '');

  await widgetPage.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'new shade leaves' }).waitFor({ timeout: 3000 });
  // nothing doubled
  assert.equal(await widgetPage.locator('#hub-chat-widget .hw-out', { hasText: 'broken shade' }).count(), 1);
  assert.equal(await agentPage.locator('#timeline .tl-reply').count(), 1);

  // an internal comment, visually distinct, never shown to the customer
  await agentPage.click('.composer-tabs [data-mode="comment"]');
  await agentPage.fill('#comment-input', 'Customer is a regular, offered free delivery.');
  await agentPage.click('#composer-send');
  await agentPage.locator('#timeline .tl-comment', { hasText: 'free delivery' }).waitFor();
  await agentPage.click('.composer-tabs [data-mode="reply"]');

  await widgetPage.fill('#hub-chat-widget .hw-input', 'Great, thank you!');
  await shot(widgetPage, 'widget', { copyTo: 'docs/widget.png' });
  await widgetPage.fill('#hub-chat-widget .hw-input', '');
  // for the picture: another customer waiting, and the All folder beside the conversation
  const other = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', other.token, { text: 'Do you have the opal pendant in 40 cm?' });
  const convId = await agentPage.getAttribute('#conv-view', 'data-id');
  await agentPage.evaluate((id) => { location.hash = `#/inbox/all/c/${id}`; }, convId);
  await agentPage.locator('#list .row', { hasText: 'opal pendant' }).waitFor();
  await agentPage.locator('#list .row.active', { hasText: 'broken shade' }).waitFor();
  await agentPage.waitForFunction(() => document.querySelector('#folders a[data-folder="pending"] .count')?.textContent === '1');
  await shot(agentPage, 'console', { copyTo: 'docs/console.png' });
  await agentPage.evaluate((id) => { location.hash = `#/inbox/pending/c/${id}`; }, convId);
});

test('ending the session tells the widget; the next message opens a new conversation', async () => {
  await agentPage.click('[data-conv-action="end-session"]');
  await agentPage.fill('#dialog input[name="reason"]', 'resolved');
  await agentPage.click('#dialog button[type="submit"]');
  await agentPage.locator('#conv-head .badge', { hasText: 'Session ended' }).waitFor();
  await agentPage.locator('#timeline .tl-event', { hasText: 'ended the messaging session' }).waitFor();
  // replies are off, comments stay possible
  assert.equal(await agentPage.isDisabled('.composer-tabs [data-mode="reply"]'), true);
  assert.equal(await agentPage.isVisible('#comment-input'), true);
  assert.equal(await agentPage.locator('[data-conv-action="end-session"]').count(), 0);

  const ended = widgetPage.locator('#hub-chat-widget .hw-ended');
  await ended.waitFor({ state: 'visible', timeout: 3000 });
  assert.match(await ended.textContent(), /This conversation has ended/);
  // with the reason the agent gave (§7 sends it to the widget)
  assert.equal(await ended.locator('.hw-ended-reason').textContent(), 'resolved');
  assert.equal(await ended.locator('.hw-ended-reason').isVisible(), true);
  await shot(widgetPage, 'widget-ended');

  // a reload keeps the history and the ended notice
  await widgetPage.reload();
  await widgetPage.waitForSelector('#hub-chat-widget .hw-panel:not([hidden])');
  await widgetPage.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'new shade leaves' }).waitFor();
  await ended.waitFor({ state: 'visible' });

  await widgetSend(widgetPage, 'One more question: do you ship to Belgium?');
  await ended.waitFor({ state: 'hidden' });
  await widgetPage.locator('#hub-chat-widget .hw-divider', { hasText: 'New conversation' }).waitFor();
  // the divider sits above the first message of the new conversation, right before it
  assert.equal(await widgetPage.locator('#hub-chat-widget .hw-divider').count(), 1);
  assert.equal(await widgetPage.locator('#hub-chat-widget .hw-divider').evaluate((div) => {
    const next = div.nextElementSibling;
    return next && next.classList.contains('hw-out') ? next.textContent : null;
  }), await widgetPage.locator('#hub-chat-widget .hw-out', { hasText: 'ship to Belgium' }).textContent());
  await agentPage.click('#folders a[data-folder="pending"]');
  await agentPage.locator('#list .row', { hasText: 'ship to Belgium' }).waitFor();
  await openRow(agentPage, 'ship to Belgium');
  await agentPage.locator('#conv-head .badge', { hasText: 'Session active' }).waitFor();
  assert.equal(await agentPage.locator('#timeline .tl-message').count(), 1);

  assert.deepEqual(realProblems(agentPage), []);
  assert.deepEqual(realProblems(widgetPage), []);
});

test('the console on a phone: list first, then the conversation with a back button', async () => {
  const { hub, browser, alice } = S;
  const phone = await newPage(browser, { viewport: { width: 390, height: 800 }, isMobile: true });
  await signIn(phone, hub, alice.token);
  await phone.locator('#list .row', { hasText: 'ship to Belgium' }).waitFor();
  assert.equal(await phone.isVisible('#conv-pane'), false);
  await shot(phone, 'console-phone-list');
  await openRow(phone, 'ship to Belgium');
  assert.equal(await phone.isVisible('#list-pane'), false);
  assert.equal(await phone.isVisible('#conv-head .back'), true);
  // a notice (here a mention, from the admin) does not cover the reply tabs or the text box
  const conv = decodeURIComponent(/\/c\/([^/]+)/.exec(await phone.evaluate(() => location.hash))[1]);
  await api(hub, 'POST', `/api/conversations/${conv}/comments`, ADMIN_TOKEN, { text: '@Alice Martin see the other conversation too' });
  const notice = phone.locator('#toasts .toast', { hasText: 'mentioned you' });
  await notice.waitFor();
  const box = await notice.boundingBox();
  const composer = await phone.locator('.composer').boundingBox();
  assert.ok(box.y + box.height <= composer.y, `notice ${JSON.stringify(box)} over the composer ${JSON.stringify(composer)}`);
  await notice.locator('.toast-close').click();
  await shot(phone, 'console-phone-conversation');
  await phone.click('#conv-head .back');
  await phone.waitForSelector('#list-pane', { state: 'visible' });
  await phone.click('#menu-btn');
  await phone.waitForSelector('#sidebar #folders a[data-folder="all"]', { state: 'visible' });
  await shot(phone, 'console-phone-menu');
  await phone.context().close();
});

test('spam and back, then close with notes', async () => {
  const { hub } = S;
  await agentPage.click('#folders a[data-folder="pending"]');
  await openRow(agentPage, 'ship to Belgium');
  await agentPage.click('[data-conv-action="spam"]');
  await agentPage.locator('#conv-head .badge.c-spam').waitFor();
  await agentPage.waitForFunction(() => document.querySelector('#folders a[data-folder="spam"] .count')?.textContent === '1');
  await agentPage.waitForFunction(() => document.querySelector('#folders a[data-folder="pending"] .count')?.textContent === '1');
  await agentPage.locator('#timeline .tl-event', { hasText: 'You marked the conversation as spam' }).waitFor();
  await agentPage.click('[data-conv-action="spam"]');
  await agentPage.locator('#conv-head .badge.c-spam').waitFor({ state: 'detached' });
  await agentPage.waitForFunction(() => document.querySelector('#folders a[data-folder="spam"] .count')?.textContent === '0');
  // a Spam clicked by mistake is undone from its notice
  await agentPage.click('[data-conv-action="spam"]');
  await agentPage.locator('#conv-head .badge.c-spam').waitFor();
  await agentPage.locator('#toasts .toast', { hasText: 'Moved to Spam.' }).locator('button.toast-action', { hasText: 'Undo' }).click();
  await agentPage.locator('#conv-head .badge.c-spam').waitFor({ state: 'detached' });
  await agentPage.locator('#toasts .toast', { hasText: 'Moved out of Spam.' }).waitFor();
  assert.equal(await agentPage.locator('#toasts .toast', { hasText: 'Moved out of Spam.' }).locator('.toast-action').count(), 0, 'an undo is not undone');
  await agentPage.waitForFunction(() => document.querySelector('#folders a[data-folder="spam"] .count')?.textContent === '0');
  const conv = decodeURIComponent(/\/c\/([^/]+)/.exec(await agentPage.evaluate(() => location.hash))[1]);
  assert.equal((await api(hub, 'GET', `/api/conversations/${conv}`, ADMIN_TOKEN)).conversation.spam, false);

  await agentPage.click('[data-conv-action="close"]');
  await agentPage.fill('#dialog textarea[name="notes"]', 'Ships to Belgium: yes, 3 days.');
  await agentPage.click('#dialog button[type="submit"]');
  await agentPage.locator('#conv-head .badge.c-closed').waitFor();
  await agentPage.locator('#timeline .tl-event', { hasText: 'Ships to Belgium: yes' }).waitFor();
  await messageCard(agentPage, 'ship to Belgium').locator('.badge', { hasText: 'Archived' }).waitFor();
  assert.equal(await agentPage.locator('[data-conv-action="close"]').count(), 0);
  await agentPage.click('#conv-states a[data-state="closed"]');
  await agentPage.locator('#list .row .badge.c-closed').first().waitFor();
  assert.deepEqual(realProblems(agentPage), []);
});

test('a bot is shown by its assistant\'s name', async () => {
  const { hub } = S;
  const bot = await api(hub, 'POST', '/api/assistants', ADMIN_TOKEN, {
    name: 'Lumi',
    rules: [{ match: 'opening hours', reply: 'Our shop is open from 9 to 18, Monday to Saturday.' }],
    transfer_keywords: ['human'],
  });
  await api(hub, 'POST', `/api/assistants/${bot.id}/publish`, ADMIN_TOKEN, { channels: ['shop'] });
  const s = await api(hub, 'POST', '/api/widget/session', undefined, { channel: 'shop' });
  const m = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'What are your opening hours?' });
  await agentPage.evaluate((id) => { location.hash = `#/inbox/all/c/${id}`; }, m.message.conversation_id);
  await agentPage.locator('#timeline .tl-reply.bot', { hasText: 'open from 9 to 18' }).waitFor();
  // the assistant was created after the console loaded its names: it asks again
  await agentPage.locator('#timeline .tl-reply.bot .tl-who', { hasText: 'Lumi (bot)' }).waitFor();
  await agentPage.locator('#timeline .tl-event', { hasText: 'Lumi (bot) took' }).waitFor();
  // and after a reload, from the names loaded at sign-in
  await agentPage.reload();
  await agentPage.locator('#timeline .tl-reply.bot .tl-who', { hasText: 'Lumi (bot)' }).waitFor();
  await api(hub, 'POST', `/api/assistants/${bot.id}/unpublish`, ADMIN_TOKEN, {});
  assert.deepEqual(realProblems(agentPage), []);
});

test('a draft stays with its agent: the next one to sign in on the tab finds an empty composer', async () => {
  const { hub, browser, alice } = S;
  const omar = await createAgent(hub, 'Omar Diallo', 'agent');
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Where is parcel 88120?' });
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await openRow(page, 'parcel 88120');
  await page.fill('#reply-input', 'Alice draft, not for Omar');
  await page.click('#signout');
  // the same tab, no reload: Omar signs in
  await page.fill('#login-token', omar.token);
  await page.click('#login-submit');
  await page.waitForSelector('#conn.conn-live');
  await openRow(page, 'parcel 88120');
  await page.locator('#reply-input').waitFor();
  assert.equal(await page.inputValue('#reply-input'), '');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('ending a session warns about customer messages still waiting', async () => {
  const { hub, browser, alice } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Is the blue lamp back in stock?' });
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'And the green one?' });
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await openRow(page, 'green one');
  await page.click('[data-conv-action="end-session"]');
  await page.locator('#dialog', { hasText: '2 customer messages are still waiting' }).waitFor();
  await page.keyboard.press('Escape');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('the widget refuses an overlong message in words and keeps its text', async () => {
  const { hub, browser } = S;
  const page = await newPage(browser);
  await openWidget(page, hub);
  const long = 'é'.repeat(4097);
  await page.fill('#hub-chat-widget .hw-input', long);
  await page.press('#hub-chat-widget .hw-input', 'Enter');
  await page.locator('#hub-chat-widget .hw-error', { hasText: '4097 characters; 4096 at most' }).waitFor();
  assert.equal(await page.inputValue('#hub-chat-widget .hw-input'), long, 'nothing cut');
  assert.equal(await page.locator('#hub-chat-widget .hw-out').count(), 0, 'nothing sent');
  // at the limit it goes
  await widgetSend(page, 'é'.repeat(4096));
  assert.equal(await page.isVisible('#hub-chat-widget .hw-error'), false);
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});

test('a draft survives a reload of the tab, and only for its agent', async () => {
  const { hub, browser, alice } = S;
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Can I return the vase after 30 days?' });
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await openRow(page, 'return the vase');
  await page.fill('#reply-input', 'Half-written answer about the vase');
  // drafts are kept 300 ms after the last key
  await page.waitForFunction(() => (sessionStorage.getItem('hub.console.drafts') || '').includes('Half-written'));
  await page.reload();
  await page.waitForSelector('#conn.conn-live');
  await page.locator('#reply-input').waitFor();
  await page.waitForFunction(() => document.querySelector('#reply-input').value === 'Half-written answer about the vase');
  // signed out, the next agent on the tab finds nothing, even after a reload
  await page.click('#signout');
  const omar = await createAgent(hub, 'Omar Sy', 'agent');
  await page.fill('#login-token', omar.token);
  await page.click('#login-submit');
  await page.waitForSelector('#conn.conn-live');
  await page.reload();
  await page.waitForSelector('#conn.conn-live');
  await openRow(page, 'return the vase');
  await page.locator('#reply-input').waitFor();
  assert.equal(await page.inputValue('#reply-input'), '');
  assert.deepEqual(realProblems(page), []);
  await page.context().close();
});
