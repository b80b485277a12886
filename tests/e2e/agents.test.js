// The Agents screen (admins only): the team with roles and presence; the admin adds an
// agent and is shown its token once; that token signs the new agent in. A taken name
// shows the hub's message inline; an agent does not see the screen in the menu.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent, ADMIN_TOKEN } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn } from './lib/pages.js';

const S = suite([['alice', 'Alice Martin']]);

test('the admin lists the agents, adds one, and the token shown once signs that agent in', async () => {
  const { hub, browser } = S;
  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  await page.locator('#nav-agents').click();
  await page.locator('#admin-pane h1', { hasText: 'Agents' }).waitFor();
  assert.equal(await page.isVisible('#list-pane'), false);
  const alicRow = page.locator('#agents-list .agent-item', { hasText: 'Alice Martin' });
  await alicRow.waitFor();
  assert.equal(await alicRow.locator('.agent-role').textContent(), 'Agent');
  assert.equal(await alicRow.locator('.agent-presence').textContent(), 'offline');
  const meRow = page.locator('#agents-list .agent-item', { hasText: '(you)' });
  assert.equal(await meRow.locator('.agent-role').textContent(), 'Admin');
  assert.equal(await meRow.locator('.agent-presence').textContent(), 'online');
  // PROTOCOL has no edit or delete of agents: none offered; only a capacity, channels
  // and a new token (extensions), the token not for oneself (this console would be
  // signed out before it showed)
  assert.deepEqual([...new Set(await page.locator('#agents-list button').evaluateAll((els) => els.map((e) => e.dataset.action)))], ['capacity', 'channels', 'new-token']);
  assert.equal(await meRow.locator('[data-action="new-token"]').isDisabled(), true);

  // a name already taken (any case): the hub's message inline, nothing created
  await page.click('#agent-add');
  await page.fill('#agent-name', 'alice martin');
  await page.click('#agent-form [data-action="save"]');
  await page.locator('#agent-form .form-error', { hasText: 'exists' }).waitFor();
  assert.equal(await page.locator('#agents-list .agent-item').count(), 2);
  assert.equal(await page.locator('#agent-token').count(), 0);

  await page.fill('#agent-name', 'Zoé Park');
  await page.selectOption('#agent-role', 'supervisor');
  await page.click('#agent-form [data-action="save"]');
  await page.locator('#agent-created').waitFor();
  assert.equal(await page.locator('#agent-form').count(), 0);
  await page.locator('#agent-created', { hasText: 'It will not be shown again' }).waitFor();
  const token = await page.inputValue('#agent-token');
  assert.ok(token.length >= 16, token);
  // an unacknowledged token cannot be discarded by adding another agent
  assert.equal(await page.isDisabled('#agent-add'), true, 'Add agent waits for "I have copied it"');
  await page.locator('#agent-add').click({ force: true });
  assert.equal(await page.inputValue('#agent-token'), token);
  assert.equal(await page.locator('#agent-form').count(), 0);
  const zoe = page.locator('#agents-list .agent-item', { hasText: 'Zoé Park' });
  await zoe.waitFor();
  assert.equal(await zoe.locator('.agent-role').textContent(), 'Supervisor');
  await page.click('#agent-token-copy');
  await page.locator('#agent-created .copy-status', { hasText: /Copied|Selected/ }).waitFor();

  // the token signs Zoé in, and the admin sees her come online
  const zoePage = await newPage(browser);
  await signIn(zoePage, hub, token);
  await zoePage.waitForFunction(() => document.querySelector('#me .me-name')?.textContent === 'Zoé Park');
  assert.equal(await zoePage.locator('#me .me-role').textContent(), 'Supervisor');
  await zoe.locator('.agent-presence', { hasText: 'online' }).waitFor();
  assert.equal(await page.inputValue('#agent-token'), token, 'the notice stays until dismissed');

  // dismissed, the token is gone for good (also after a reload)
  await page.click('#agent-token-done');
  assert.equal(await page.locator('#agent-token').count(), 0);
  assert.equal(await page.isDisabled('#agent-add'), false);
  await page.reload();
  await page.locator('#agents-list .agent-item', { hasText: 'Zoé Park' }).waitFor();
  assert.equal(await page.locator('#agent-token').count(), 0);
  assert.equal(await page.content().then((c) => c.includes(token)), false);

  // Zoé lost her token: the admin gives her a new one; her open console is signed out,
  // the old token no longer signs in, the new one does
  await zoe.locator('[data-action="new-token"]').click();
  await page.locator('#dialog[open]', { hasText: 'Give Zoé Park a new token?' }).waitFor();
  await page.click('#dialog button[type="submit"]');
  await page.locator('#agent-created', { hasText: 'Zoé Park has a new token' }).waitFor();
  const renewed = await page.inputValue('#agent-token');
  assert.notEqual(renewed, token);
  await zoePage.locator('#login-token').waitFor();
  await zoePage.fill('#login-token', token);
  await zoePage.click('#login-submit');
  await zoePage.locator('#login .form-error, #login-error').first().waitFor();
  await signIn(zoePage, hub, renewed);
  await zoePage.waitForFunction(() => document.querySelector('#me .me-name')?.textContent === 'Zoé Park');
  await page.click('#agent-token-done');

  // and the Team list of the console knows her
  await page.click('#folders a[data-folder="pending"]');
  await page.locator('#team .team-item', { hasText: 'Zoé Park' }).waitFor();
  assert.deepEqual(realProblems(page), []);
  assert.deepEqual(realProblems(zoePage).filter((p) => !/401/.test(p)), []);
});

test('an agent does not see the Agents entry', async () => {
  const { hub, browser, alice } = S;
  const page = await newPage(browser);
  await signIn(page, hub, alice.token);
  await page.waitForFunction(() => document.querySelector('#me .me-name')?.textContent === 'Alice Martin');
  assert.equal(await page.isVisible('#nav-agents'), false);
  assert.deepEqual(realProblems(page), []);
});

test('a teammate signing in while the admin types a name changes neither the field nor the caret', async () => {
  const { hub, browser } = S;
  const bruno = await createAgent(hub, 'Bruno Costa', 'agent');
  const page = await newPage(browser);
  await signIn(page, hub, ADMIN_TOKEN);
  await page.locator('#nav-agents').click();
  const brunoRow = page.locator('#agents-list .agent-item', { hasText: 'Bruno Costa' });
  await brunoRow.waitFor();
  await page.click('#agent-add');
  await page.locator('#agent-name').pressSequentially('Camille Dupont');
  // the caret goes back after "Camille", and the role list keeps a choice
  await page.selectOption('#agent-role', 'admin');
  await page.locator('#agent-name').focus();
  await page.evaluate(() => {
    const el = document.querySelector('#agent-name');
    el.setSelectionRange(7, 7);
    el.dataset.mark = 'same';
  });

  // the teammate signs in: presence changes live on the list
  const other = await newPage(browser);
  await signIn(other, hub, bruno.token);
  await brunoRow.locator('.agent-presence', { hasText: 'online' }).waitFor();

  await page.keyboard.type(' Maria');
  assert.equal(await page.inputValue('#agent-name'), 'Camille Maria Dupont');
  assert.equal(await page.getAttribute('#agent-name', 'data-mark'), 'same', 'the field was not rebuilt');
  assert.equal(await page.inputValue('#agent-role'), 'admin');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'agent-name');

  // an agent the page does not know yet (added elsewhere) comes online: still only the list
  const carla = await createAgent(hub, 'Carla Nunes', 'agent');
  const third = await newPage(browser);
  await signIn(third, hub, carla.token);
  await page.locator('#agents-list .agent-item', { hasText: 'Carla Nunes' }).locator('.agent-presence', { hasText: 'online' }).waitFor();
  await page.keyboard.type('!');
  assert.equal(await page.inputValue('#agent-name'), 'Camille Maria! Dupont');
  assert.equal(await page.getAttribute('#agent-name', 'data-mark'), 'same');
  assert.deepEqual(realProblems(page), []);
});
