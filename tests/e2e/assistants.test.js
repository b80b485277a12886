// The Assistants screen (admins only): the admin adds an assistant with a rule and
// publishes it on "web"; a customer writing the rule's trigger in the widget gets the
// bot's reply; the admin unpublishes it and the list shows it as a draft again. The
// hub's error message shows inline; an agent does not see the screen in the menu.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, shot, realProblems } from './lib/browser.js';
import { signIn, openWidget, widgetSend, openStats } from './lib/pages.js';

const S = suite([['alice', 'Alice Martin']]);

test('the admin adds an assistant, publishes it on web, the widget gets its reply; unpublished it is a draft', async () => {
  const { hub, browser } = S;
  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  const nav = page.locator('#nav-assistants');
  await nav.waitFor({ state: 'visible' });
  await nav.click();
  await page.locator('#admin-pane h1', { hasText: 'Assistants' }).waitFor();
  await page.locator('#assistants-empty').waitFor();
  assert.equal(await page.isVisible('#list-pane'), false);

  // a rule without a match: the hub's message shows inline, nothing is created
  await page.click('#assistant-add');
  await page.fill('#assistant-name', 'Order helper');
  await page.fill('#assistant-form .rule-reply', 'Orders ship within 2 days.');
  await page.click('#assistant-form [data-action="save"]');
  await page.locator('#assistant-form .form-error', { hasText: "a rule's match must not be empty" }).waitFor();
  assert.equal(await page.locator('#assistants-list .asst-item').count(), 0);

  await page.fill('#assistant-form .rule-match', 'shipping');
  await page.click('#assistant-form [data-action="add-rule"]');
  await page.locator('#assistant-form .rule-match').nth(1).fill('refund');
  await page.locator('#assistant-form .rule-reply').nth(1).fill('Refunds take 5 days.');
  await page.fill('#assistant-transfer-keywords', 'agent, human');
  await page.fill('#assistant-transfer-reply', 'Passing you to a teammate.');
  await page.click('#assistant-form [data-action="save"]');
  const row = page.locator('#assistants-list .asst-item', { hasText: 'Order helper' });
  await row.waitFor();
  assert.equal(await page.locator('#assistant-form').count(), 0);
  assert.equal(await row.locator('.asst-status').textContent(), 'Draft');
  assert.match(await row.locator('.asst-summary').textContent(), /2 rules · transfers on: agent, human/);

  // edit: PUT replaces the definition (the second rule goes, a default reply comes)
  await row.locator('[data-action="edit"]').click();
  assert.equal(await page.inputValue('#assistant-name'), 'Order helper');
  assert.equal(await page.locator('#assistant-form .rule-match').nth(1).inputValue(), 'refund');
  await page.locator('#assistant-form [data-action="remove-rule"]').nth(1).click();
  await page.fill('#assistant-default-reply', 'Thanks! A teammate will read this soon.');
  await page.click('#assistant-form [data-action="save"]');
  await row.locator('.asst-summary', { hasText: '1 rule · transfers on: agent, human · has a default reply' }).waitFor();

  // the channel field offers "web"; publishing with no channel: the hub's message inline
  assert.equal(await row.locator('.asst-channels-input').inputValue(), 'web');
  await row.locator('.asst-channels-input').fill('');
  await row.locator('[data-action="publish"]').click();
  await row.locator('.form-error', { hasText: 'channels must list at least one channel name' }).waitFor();

  await row.locator('.asst-channels-input').fill('web, email');
  await row.locator('[data-action="publish"]').click();
  await row.locator('.asst-status', { hasText: 'Published' }).waitFor();
  assert.deepEqual(await row.locator('.chip').evaluateAll((els) => els.map((e) => e.dataset.channel)), ['web', 'email']);
  assert.equal(await row.locator('.form-error').count(), 0);
  await shot(page, 'console-assistants');

  const widget = await newPage(browser, { viewport: { width: 1100, height: 760 } });
  await openWidget(widget, hub);
  await widgetSend(widget, 'Hi, what are your SHIPPING times?');
  await widget.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: 'Orders ship within 2 days.' }).waitFor({ timeout: 5000 });

  // unpublish one channel (its chip), then all
  await row.locator('.chip[data-channel="email"] [data-action="unpublish-channel"]').click();
  await row.locator('.chip[data-channel="email"]').waitFor({ state: 'detached' });
  assert.equal(await row.locator('.asst-status').textContent(), 'Published');
  await row.locator('[data-action="unpublish"]').click();
  await row.locator('.asst-status', { hasText: 'Draft' }).waitFor();
  assert.equal(await row.locator('.chip').count(), 0);
  await row.locator('.asst-nochannel', { hasText: 'No channel' }).waitFor();

  // a reload lists it as a draft still
  await page.reload();
  await page.locator('#assistants-list .asst-item', { hasText: 'Order helper' }).locator('.asst-status', { hasText: 'Draft' }).waitFor();

  // back to the inbox
  await page.click('#folders a[data-folder="pending"]');
  await page.locator('#list-title', { hasText: 'Pending' }).waitFor();
  assert.equal(await page.isVisible('#admin-pane'), false);
  assert.equal(await page.isVisible('#list-pane'), true);

  assert.deepEqual(realProblems(page), []);
  assert.deepEqual(realProblems(widget), []);
});

test('an agent does not see the Assistants entry', async () => {
  const { hub, browser, alice } = S;
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.waitForFunction(() => document.querySelector('#me .me-name')?.textContent === 'Alice Martin');
  await page.locator('#folders a[data-folder="pending"]').waitFor();
  assert.equal(await page.isVisible('#nav-assistants'), false);
  assert.equal(await page.isVisible('#admin-nav'), false);
  assert.deepEqual(realProblems(page), []);
});

test('keyboard focus stays in the form after Add rule and Remove; a failed publish keeps the typed channels', async () => {
  const { hub, browser } = S;
  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  await page.locator('#nav-assistants').click();
  await page.locator('#admin-pane h1', { hasText: 'Assistants' }).waitFor();
  await page.click('#assistant-add');
  await page.fill('#assistant-name', 'Keyboard helper');
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    return el === document.body ? 'body' : `${el.dataset.action || el.className}|${el.getAttribute('aria-label') || ''}`;
  });

  // Enter on Add rule: focus on the new rule's match field, where typing goes
  await page.fill('#assistant-form .rule-match', 'shipping');
  await page.fill('#assistant-form .rule-reply', 'Orders ship within 2 days.');
  await page.focus('#assistant-form [data-action="add-rule"]');
  await page.keyboard.press('Enter');
  assert.equal(await focused(), 'rule-match|Rule 2: match');
  await page.keyboard.type('refund');
  assert.equal(await page.locator('#assistant-form .rule-match').nth(1).inputValue(), 'refund');
  await page.focus('#assistant-form [data-action="add-rule"]');
  await page.keyboard.press('Enter');
  assert.equal(await focused(), 'rule-match|Rule 3: match');
  await page.keyboard.type('invoice');

  // Enter on Remove: focus on the rule that took its place, else the one before
  await page.focus('#assistant-form [aria-label="Remove rule 2"]');
  await page.keyboard.press('Enter');
  assert.deepEqual(await page.locator('#assistant-form .rule-match').evaluateAll((els) => els.map((e) => e.value)), ['shipping', 'invoice']);
  assert.equal(await focused(), 'rule-match|Rule 2: match');
  await page.focus('#assistant-form [aria-label="Remove rule 2"]');
  await page.keyboard.press('Enter');
  assert.equal(await focused(), 'rule-match|Rule 1: match');
  await page.focus('#assistant-form [aria-label="Remove rule 1"]');
  await page.keyboard.press('Enter');
  assert.equal(await focused(), 'add-rule|');
  await page.keyboard.press('Enter');
  await page.keyboard.type('shipping');
  await page.fill('#assistant-form .rule-reply', 'Orders ship within 2 days.');
  await page.click('#assistant-form [data-action="save"]');
  const row = page.locator('#assistants-list .asst-item', { hasText: 'Keyboard helper' });
  await row.waitFor();

  // the publish request fails (the hub is unreachable): the typed channels stay
  let failed = 0;
  await page.route('**/api/assistants/*/publish', (route) => {
    failed += 1;
    return route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"down"}}' });
  });
  await row.locator('.asst-channels-input').fill('web, email');
  await row.locator('[data-action="publish"]').click();
  await row.locator('.form-error').waitFor();
  assert.equal(failed, 1);
  assert.equal(await row.locator('.asst-channels-input').inputValue(), 'web, email');
  await page.unroute('**/api/assistants/*/publish');

  // published once the hub answers; the field is then empty
  await row.locator('[data-action="publish"]').click();
  await row.locator('.asst-status', { hasText: 'Published' }).waitFor();
  assert.deepEqual(await row.locator('.chip').evaluateAll((els) => els.map((e) => e.dataset.channel)), ['web', 'email']);
  assert.equal(await row.locator('.asst-channels-input').inputValue(), '');
  assert.deepEqual(realProblems(page), []);
});

test('saving a bot customers could never get past asks first; publishing on a channel another bot holds asks first', async () => {
  const { hub, browser } = S;
  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  await page.locator('#nav-assistants').click();
  await page.locator('#admin-pane h1', { hasText: 'Assistants' }).waitFor();
  const dlg = page.locator('#dialog');

  // a default reply and no transfer keyword: warned, cancelled, then saved anyway
  await page.click('#assistant-add');
  await page.fill('#assistant-name', 'Night bot');
  await page.fill('#assistant-form .rule-match', 'hours');
  await page.fill('#assistant-form .rule-reply', 'We open at 9.');
  await page.fill('#assistant-default-reply', 'We are closed; we will answer tomorrow.');
  await page.click('#assistant-form [data-action="save"]');
  await dlg.locator('h2', { hasText: 'Customers could never reach a person' }).waitFor();
  await dlg.locator('button', { hasText: 'Cancel' }).click();
  await dlg.waitFor({ state: 'hidden' });
  assert.equal(await page.locator('#assistant-form').count(), 1);
  assert.equal(await page.locator('#assistants-list .asst-item', { hasText: 'Night bot' }).count(), 0);
  await page.click('#assistant-form [data-action="save"]');
  await dlg.locator('button[type="submit"]', { hasText: 'Save anyway' }).click();
  const night = page.locator('#assistants-list .asst-item', { hasText: 'Night bot' });
  await night.waitFor();

  // published on the channel the field offers, web, which Keyboard helper has: asked first
  assert.equal(await night.locator('.asst-channels-input').inputValue(), 'web');
  await night.locator('[data-action="publish"]').click();
  await dlg.locator('.dialog-desc', { hasText: 'Publishing Night bot takes “web” from Keyboard helper' }).waitFor();
  await dlg.locator('button[type="submit"]', { hasText: 'Publish and take over' }).click();
  await night.locator('.chip[data-channel="web"]').waitFor();

  // a second bot with a transfer keyword: no warning on save
  await page.click('#assistant-add');
  await page.fill('#assistant-name', 'Day bot');
  await page.fill('#assistant-form .rule-match', 'hours');
  await page.fill('#assistant-form .rule-reply', 'We are open until 6.');
  await page.fill('#assistant-default-reply', 'A teammate will answer.');
  await page.fill('#assistant-transfer-keywords', 'agent');
  await page.click('#assistant-form [data-action="save"]');
  const day = page.locator('#assistants-list .asst-item', { hasText: 'Day bot' });
  await day.waitFor();
  assert.equal(await dlg.evaluate((d) => d.open), false);

  // publishing it on web would take web from Night bot: asked, cancelled, then confirmed
  await day.locator('[data-action="publish"]').click();
  await dlg.locator('.dialog-desc', { hasText: 'takes “web” from Night bot' }).waitFor();
  await dlg.locator('button', { hasText: 'Cancel' }).click();
  await dlg.waitFor({ state: 'hidden' });
  assert.equal(await night.locator('.chip[data-channel="web"]').count(), 1);
  assert.equal(await day.locator('.chip').count(), 0);
  await day.locator('[data-action="publish"]').click();
  await dlg.locator('button[type="submit"]', { hasText: 'Publish and take over' }).click();
  await day.locator('.chip[data-channel="web"]').waitFor();
  await night.locator('.asst-status', { hasText: 'Draft' }).waitFor();
  assert.deepEqual(realProblems(page), []);
});

test('a save from a stale copy is refused: the screen shows the other admin’s version and keeps the edit to retry; Delete asks first', async () => {
  const { hub, browser } = S;
  const path = (id) => `/api/assistants/${encodeURIComponent(id)}`;
  const created = await api(hub, 'POST', '/api/assistants', ADMIN_TOKEN, { name: 'Returns bot', rules: [{ match: 'return', reply: 'Use the label in your parcel.' }], transfer_keywords: ['agent'] });
  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  await page.locator('#nav-assistants').click();
  const row = page.locator(`#assistants-list .asst-item[data-id="${created.id}"]`);
  await row.waitFor();

  // this admin opens the form; another admin saves meanwhile
  await row.locator('[data-action="edit"]').click();
  await page.fill('#assistant-name', 'Returns bot (mine)');
  await page.fill('#assistant-default-reply', 'A teammate will answer.');
  await api(hub, 'PUT', path(created.id), ADMIN_TOKEN, { name: 'Returns bot (theirs)', rules: [], transfer_keywords: ['human'] });
  await page.click('#assistant-form [data-action="save"]');
  const conflict = page.locator('#assistant-form .asst-conflict');
  await conflict.waitFor();
  const said = await conflict.textContent();
  assert.match(said, /Someone else changed this assistant/);
  assert.match(said, /Returns bot \(theirs\)/);
  assert.match(said, /transfers on: human/);
  // their version stands; this admin's edit is still in the form
  assert.equal((await api(hub, 'GET', path(created.id), ADMIN_TOKEN)).name, 'Returns bot (theirs)');
  assert.equal(await page.inputValue('#assistant-name'), 'Returns bot (mine)');
  assert.equal(await page.inputValue('#assistant-default-reply'), 'A teammate will answer.');
  // saving again replaces theirs, knowingly
  await page.click('#assistant-form [data-action="save"]');
  await row.locator('.asst-name', { hasText: 'Returns bot (mine)' }).waitFor();
  assert.equal(await page.locator('#assistant-form').count(), 0);
  const mine = await api(hub, 'GET', path(created.id), ADMIN_TOKEN);
  assert.equal(mine.name, 'Returns bot (mine)');
  assert.equal(mine.default_reply, 'A teammate will answer.');

  // a row's publish from a stale copy: refused, the row shown as it now is
  await api(hub, 'PUT', path(created.id), ADMIN_TOKEN, { name: 'Returns bot (renamed)', rules: [], transfer_keywords: ['agent'] });
  await row.locator('.asst-channels-input').fill('chat');
  await row.locator('[data-action="publish"]').click();
  await row.locator('.form-error', { hasText: 'Someone else changed this assistant' }).waitFor();
  await row.locator('.asst-name', { hasText: 'Returns bot (renamed)' }).waitFor();
  assert.equal((await api(hub, 'GET', path(created.id), ADMIN_TOKEN)).status, 'draft');
  await row.locator('.asst-channels-input').fill('chat');
  await row.locator('[data-action="publish"]').click();
  await row.locator('.chip[data-channel="chat"]').waitFor();
  assert.equal(await row.locator('.form-error').count(), 0);

  // Delete asks first, says what it ends; cancelled, nothing happens
  const dlg = page.locator('#dialog');
  await row.locator('[data-action="delete"]').click();
  await dlg.locator('.dialog-desc', { hasText: 'answers customers on chat' }).waitFor();
  await dlg.locator('button', { hasText: 'Cancel' }).click();
  await dlg.waitFor({ state: 'hidden' });
  assert.equal(await row.count(), 1);
  await row.locator('[data-action="delete"]').click();
  await dlg.locator('button[type="submit"]', { hasText: 'Delete' }).click();
  await row.waitFor({ state: 'detached' });
  const list = await api(hub, 'GET', '/api/assistants', ADMIN_TOKEN);
  assert.equal(list.items.some((a) => a.id === created.id), false);
  assert.deepEqual(realProblems(page), []);
});

test('Stats shows how many conversations the bots answered alone', async () => {
  const { hub, browser, alice } = S;
  const bot = await api(hub, 'POST', '/api/assistants', ADMIN_TOKEN, {
    name: 'Opening hours', rules: [{ match: 'open', reply: 'We open at 9.' }], transfer_keywords: ['human'],
  });
  await api(hub, 'POST', `/api/assistants/${bot.id}/publish`, ADMIN_TOKEN, { channels: ['hours'] });
  const customer = async (text) => {
    const s = await api(hub, 'POST', '/api/widget/session', null, { channel: 'hours' });
    await api(hub, 'POST', '/api/widget/messages', s.token, { text });
  };
  await customer('When do you open?');
  await customer('A human, please');

  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  const stat = await openStats(page);
  await stat('bot_conversations').waitFor();
  const a0 = (await api(hub, 'GET', '/api/stats?automation=true', alice.token)).automation;
  assert.ok(a0.bot_conversations >= 2 && a0.fully_automated >= 1, JSON.stringify(a0));
  assert.equal(await stat('bot_conversations').textContent(), String(a0.bot_conversations));
  assert.equal(await stat('fully_automated').textContent(), String(a0.fully_automated));
  assert.equal(await stat('automated_percent').textContent(), `${a0.automated_percent} %`);

  // one more answered alone: the figures follow (read again on Refresh)
  await customer('Are you open on Sunday?');
  await page.click('#stats-refresh');
  await stat('fully_automated').filter({ hasText: String(a0.fully_automated + 1) }).waitFor();
  assert.equal(await stat('bot_conversations').textContent(), String(a0.bot_conversations + 1));
  assert.deepEqual(realProblems(page), []);
});
