// The help-request round trip between two consoles, and internal comments with an
// @mention picked from the autocomplete.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, shot, realProblems } from './lib/browser.js';
import { signIn, folder, openRow, messageCard } from './lib/pages.js';

const S = suite([['bob', 'Bob'], ['sue', 'Sue Chen', 'supervisor']]);

let bobPage;
let suePage;

async function customerSays(text) {
  const s = await api(S.hub, 'POST', '/api/widget/session', undefined, { name: 'Dana' });
  const r = await api(S.hub, 'POST', '/api/widget/messages', s.token, { text });
  return { ...s, message: r.message };
}

test('an agent requests help, a supervisor answers it, the agent sees the answer', async () => {
  const { hub, browser, bob, sue } = S;
  bobPage = await newPage(browser);
  suePage = await newPage(browser);
  await signIn(bobPage, hub, bob.token);
  await signIn(suePage, hub, sue.token);
  // each sees the other online
  await bobPage.locator('#team .team-item[data-presence="online"]', { hasText: 'Sue Chen' }).waitFor();
  await suePage.locator('#team .team-item[data-presence="online"]', { hasText: 'Bob' }).waitFor();

  await customerSays('Can I get a refund on a lamp bought 40 days ago?');
  await openRow(bobPage, 'refund on a lamp');
  const bobCard = messageCard(bobPage, 'refund on a lamp');
  await bobCard.locator('[data-action="assign"]').click();
  await bobCard.locator('.badge', { hasText: 'Assigned' }).waitFor();

  await bobCard.locator('[data-action="request-help"]').click();
  await bobPage.fill('#dialog textarea[name="question"]', 'Our policy says 30 days; can we make an exception?');
  await bobPage.click('#dialog button[type="submit"]');
  await bobCard.locator('.badge', { hasText: 'Help requested' }).waitFor();
  await bobCard.locator('.help-box', { hasText: 'can we make an exception' }).waitFor();
  // Bob is no longer the assignee: he may not take his own help request
  assert.equal(await bobCard.locator('[data-action="assign"]').isDisabled(), true);

  // Sue is told, and sees it in Help requests
  await suePage.locator('.toast', { hasText: 'Bob asked for help' }).waitFor();
  await suePage.waitForFunction(() => document.querySelector('#folders a[data-folder="help_requests"] .count')?.textContent === '1');
  // the notice has somewhere to go: it stays past the 5 s of a plain toast, until dismissed
  await suePage.waitForTimeout(5500);
  const notice = suePage.locator('.toast', { hasText: 'Bob asked for help' });
  assert.equal(await notice.count(), 1);
  await notice.locator('.toast-close').click();
  assert.equal(await notice.count(), 0);
  await folder(suePage, 'help_requests').click();
  await suePage.locator('#list .row', { hasText: 'refund on a lamp' }).waitFor();
  await openRow(suePage, 'refund on a lamp');
  const sueCard = messageCard(suePage, 'refund on a lamp');
  await sueCard.locator('.help-box', { hasText: 'can we make an exception' }).waitFor();
  await sueCard.locator('[data-action="assign"]', { hasText: 'Take help request' }).click();
  await sueCard.locator('.badge', { hasText: 'Assigned' }).waitFor();
  await sueCard.locator('[data-action="answer-help"]').click();
  await suePage.fill('#dialog textarea[name="answer"]', 'Yes, exceptionally: offer a full refund.');
  await shot(suePage, 'console-answer-help');
  await suePage.click('#dialog button[type="submit"]');
  await sueCard.locator('.badge', { hasText: 'Help answered' }).waitFor();
  await suePage.waitForFunction(() => document.querySelector('#folders a[data-folder="help_requests"] .count')?.textContent === '0');

  // Bob sees the answer live: toast, badge, answer, and the message back in Mine
  await bobPage.locator('.toast', { hasText: 'Sue Chen answered your help request' }).waitFor();
  await bobCard.locator('.badge', { hasText: 'Help answered' }).waitFor();
  await bobCard.locator('.help-a', { hasText: 'offer a full refund' }).waitFor();
  await bobPage.locator('#timeline .tl-event', { hasText: 'Sue Chen answered the help request' }).waitFor();
  await bobPage.waitForFunction(() => document.querySelector('#folders a[data-folder="mine"] .count')?.textContent === '1');
  assert.deepEqual(
    await bobCard.locator('.msg-actions [data-action]').evaluateAll((els) => els.map((e) => e.dataset.action)),
    ['hold', 'request-help', 'archive', 'unassign'],
  );
  await shot(bobPage, 'console-help-answered');
});

test('hold for 15 minutes shows a timer; the message is in On hold', async () => {
  const bobCard = messageCard(bobPage, 'refund on a lamp');
  await bobCard.locator('summary[data-action="hold"]').click();
  await bobCard.locator('[data-hold="900"]').click();
  await bobCard.locator('.badge', { hasText: 'On hold' }).waitFor();
  const left = await bobCard.locator('.timer [data-until]').textContent();
  assert.match(left, /^1[45]:\d\d left$/);
  await bobPage.waitForFunction(() => document.querySelector('#folders a[data-folder="on_hold"] .count')?.textContent === '1');
  await bobPage.locator('#timeline .tl-event', { hasText: 'You put the message' }).waitFor();
  // on hold: no second hold, the other actions remain
  assert.deepEqual(
    await bobCard.locator('.msg-actions [data-action]').evaluateAll((els) => els.map((e) => e.dataset.action)),
    ['request-help', 'archive', 'unassign'],
  );
  // Sue (a supervisor, not the assignee) may only unassign
  const sueCard = messageCard(suePage, 'refund on a lamp');
  await sueCard.locator('.badge', { hasText: 'On hold' }).waitFor();
  const states = await sueCard.locator('.msg-actions [data-action]').evaluateAll((els) => els.map((e) => `${e.dataset.action}:${e.disabled ? 'off' : 'on'}`));
  assert.deepEqual(states, ['request-help:off', 'archive:off', 'unassign:on']);
});

test('an internal comment with an @mention picked from the autocomplete', async () => {
  await bobPage.click('.composer-tabs [data-mode="comment"]');
  await bobPage.click('#comment-input');
  await bobPage.keyboard.type('Thanks @Su');
  await bobPage.locator('#mention-menu .mention-option', { hasText: 'Sue Chen' }).waitFor();
  await bobPage.keyboard.press('Enter');
  assert.equal(await bobPage.inputValue('#comment-input'), 'Thanks @Sue Chen ');
  await bobPage.keyboard.type('— refund done.');
  await bobPage.keyboard.press('Enter');
  const comment = bobPage.locator('#timeline .tl-comment', { hasText: 'refund done' });
  await comment.waitFor();
  assert.equal(await comment.locator('.mention').textContent(), '@Sue Chen');

  await suePage.locator('.toast', { hasText: 'Bob mentioned you' }).waitFor();
  await suePage.locator('#timeline .tl-comment .mention', { hasText: '@Sue Chen' }).waitFor();
  assert.deepEqual(realProblems(bobPage), []);
  assert.deepEqual(realProblems(suePage), []);
});

test('a supervisor assigns a message to a teammate; the teammate holds it until a chosen time', async () => {
  const { bob } = S;
  await customerSays('Which bulb fits the desk lamp No. 4?');
  await suePage.click('#folders a[data-folder="pending"]');
  await openRow(suePage, 'Which bulb fits');
  const sueCard = messageCard(suePage, 'Which bulb fits');
  await sueCard.locator('[data-action="assign-to"]').click();
  await suePage.selectOption('#dialog select[name="agent_id"]', bob.id);
  await suePage.click('#dialog button[type="submit"]');
  await sueCard.locator('.msg-status', { hasText: 'with Bob' }).waitFor();
  await suePage.locator('#timeline .tl-event', { hasText: 'You assigned the message to Bob' }).waitFor();

  await bobPage.click('#folders a[data-folder="mine"]');
  await openRow(bobPage, 'Which bulb fits');
  const bobCard = messageCard(bobPage, 'Which bulb fits');
  await bobCard.locator('summary[data-action="hold"]').click();
  await bobCard.locator('[data-hold="until"]').click();
  const until = new Date(Date.now() + 2 * 3600 * 1000);
  until.setSeconds(0, 0);
  const local = new Date(until.getTime() - until.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await bobPage.fill('#dialog input[name="until"]', local);
  await bobPage.click('#dialog button[type="submit"]');
  await bobCard.locator('.badge', { hasText: 'On hold' }).waitFor();
  const hh = String(until.getHours()).padStart(2, '0');
  const mm = String(until.getMinutes()).padStart(2, '0');
  // Two hours from now may be tomorrow: the console then shows the day before the time.
  const day = until.toDateString() === new Date().toDateString()
    ? ''
    : `${until.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} `;
  await bobCard.locator('.timer', { hasText: `until ${day}${hh}:${mm}` }).waitFor();
  assert.match(await bobCard.locator('.timer [data-until]').textContent(), /^1 h 5\d min left$/);
  await bobPage.waitForFunction(() => document.querySelector('#folders a[data-folder="on_hold"] .count')?.textContent === '2');
});

test('away and back: presence follows the toggle on every console', async () => {
  await bobPage.click('#presence button[data-status="away"]');
  await bobPage.waitForSelector('#presence[data-current="away"]');
  await suePage.locator('#team .team-item[data-presence="away"]', { hasText: 'Bob' }).waitFor();
  await bobPage.click('#presence button[data-status="online"]');
  await suePage.locator('#team .team-item[data-presence="online"]', { hasText: 'Bob' }).waitFor();
  await bobPage.context().close();
  await suePage.locator('#team .team-item[data-presence="offline"]', { hasText: 'Bob' }).waitFor();
});

test('a help answer stays on the message when it falls back to pending, and once answered', async () => {
  const { hub, browser, bob, sue } = S;
  const c = await customerSays('Can the sideboard be delivered to the 4th floor?');
  const id = c.message.id;
  await api(hub, 'POST', `/api/messages/${id}/assign`, bob.token);
  await api(hub, 'POST', `/api/messages/${id}/request-help`, bob.token, { question: 'Do our movers carry upstairs?' });
  await api(hub, 'POST', `/api/messages/${id}/assign`, sue.token);
  const answered = await api(hub, 'POST', `/api/messages/${id}/answer-help`, sue.token, { answer: 'Yes, up to the 5th floor, no lift needed.' });
  // back to Bob when he is present, else to pending: either way, then unassigned
  if (answered.message.status !== 'pending') await api(hub, 'POST', `/api/messages/${id}/unassign`, sue.token);

  bobPage = await newPage(browser);
  await signIn(bobPage, hub, bob.token);
  await folder(bobPage, 'pending').click();
  const row = bobPage.locator('#list .row', { hasText: 'sideboard' });
  await row.locator('.badge', { hasText: 'Pending' }).waitFor();
  await row.locator('.help-a', { hasText: 'up to the 5th floor' }).waitFor();
  await openRow(bobPage, 'sideboard');
  const card = messageCard(bobPage, 'sideboard');
  await card.locator('.badge', { hasText: 'Pending' }).waitFor();
  await card.locator('.help-q', { hasText: 'Do our movers carry upstairs?' }).waitFor();
  await card.locator('.help-a', { hasText: 'up to the 5th floor' }).waitFor();

  await bobPage.fill('#reply-input', 'Yes, our movers carry it up to your flat.');
  await bobPage.press('#reply-input', 'Enter');
  await card.locator('.badge', { hasText: 'Answered' }).waitFor();
  await card.locator('.help-a', { hasText: 'up to the 5th floor' }).waitFor();
  assert.deepEqual(realProblems(bobPage), []);
  await bobPage.context().close();
});
