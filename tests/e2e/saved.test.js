// Saved replies: a supervisor keeps them (Tools → Saved replies), an agent inserts one
// in the reply box with "/" and its shortcut, its placeholders filled in, and sends it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, shot, realProblems } from './lib/browser.js';
import { signIn, openRow } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee'], ['sue', 'Sue Chen', 'supervisor']]);

test('a supervisor saves a reply; an agent inserts it with /shortcut, filled in, and sends it', async () => {
  const { hub, browser, ann, sue } = S;
  const sp = await newPage(browser);
  await signIn(sp, hub, sue.token);
  await sp.click('#nav-saved');
  await sp.locator('#admin-title', { hasText: 'Saved replies' }).waitFor();
  await sp.locator('.admin-body .list-empty', { hasText: 'No saved reply yet' }).waitFor();
  await sp.click('#saved-add');
  await sp.fill('#saved-shortcut', 'refund');
  await sp.fill('#saved-text', 'Bonjour {{customer.first_name|}}, votre remboursement est parti. {{agent.first_name}}');
  await sp.click('#saved-form button[type="submit"]');
  await sp.locator('#saved-list .saved-item[data-shortcut="refund"]').waitFor();
  // a shortcut taken (whatever its case) is refused in the hub's words, the form kept
  await sp.click('#saved-add');
  await sp.fill('#saved-shortcut', 'REFUND');
  await sp.fill('#saved-text', 'Another');
  await sp.click('#saved-form button[type="submit"]');
  await sp.locator('#saved-form .form-error', { hasText: '/REFUND is taken' }).waitFor();
  await sp.fill('#saved-shortcut', 'delay');
  await sp.fill('#saved-text', 'Comptez 3 à 5 jours.');
  await sp.click('#saved-form button[type="submit"]');
  await sp.locator('#saved-list .saved-item[data-shortcut="delay"]').waitFor();
  await shot(sp, 'console-saved-replies');

  // an agent reads them, without the supervisor's buttons
  const s = await api(hub, 'POST', '/api/widget/session', undefined, { name: 'Marie Dupont' });
  const m = (await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Et mon remboursement ?' })).message;
  const page = await newPage(browser);
  await signIn(page, hub, ann.token);
  await page.click('#nav-saved');
  await page.locator('#saved-list .saved-item[data-shortcut="refund"]').waitFor();
  assert.equal(await page.locator('#saved-add').count(), 0);
  assert.equal(await page.locator('#saved-list [data-action="delete"]').count(), 0);

  // "/ref" at the start of the reply box lists it; Enter inserts it, filled in
  await page.goto(`${hub.url}/#/inbox/pending`);
  await openRow(page, 'Et mon remboursement ?');
  await page.click('#reply-input');
  await page.keyboard.type('/ref');
  const option = page.locator('#mention-menu .saved-option[data-shortcut="refund"]');
  await option.waitFor();
  assert.equal(await page.locator('#mention-menu .saved-option').count(), 1, 'only what starts or holds "ref"');
  await page.keyboard.press('Enter');
  assert.equal(await page.inputValue('#reply-input'), 'Bonjour Marie, votre remboursement est parti. Ann');
  assert.ok(await page.locator('#mention-menu').isHidden());
  // then Enter sends it, as any reply
  await page.keyboard.press('Enter');
  await page.locator('#timeline .tl-reply', { hasText: 'votre remboursement est parti' }).waitFor();
  const conv = await api(hub, 'GET', `/api/conversations/${m.conversation_id}`, ann.token);
  const reply = conv.timeline.find((it) => it.type === 'reply');
  assert.equal(reply.text, 'Bonjour Marie, votre remboursement est parti. Ann');

  // a "/" inside a line is just a slash; Escape closes the list
  await page.click('#reply-input');
  await page.keyboard.type('1/2 ');
  assert.ok(await page.locator('#mention-menu').isHidden());
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('/d');
  await page.locator('#mention-menu .saved-option[data-shortcut="delay"]').waitFor();
  await page.keyboard.press('Escape');
  assert.ok(await page.locator('#mention-menu').isHidden());
  assert.equal(await page.inputValue('#reply-input'), '1/2 \n/d');

  // the supervisor edits one and deletes the other (after confirming)
  await sp.locator('#saved-list .saved-item[data-shortcut="delay"] [data-action="edit"]').click();
  await sp.fill('#saved-text', 'Comptez 2 jours.');
  await sp.click('#saved-form button[type="submit"]');
  await sp.locator('#saved-list .saved-item[data-shortcut="delay"]', { hasText: 'Comptez 2 jours.' }).waitFor();
  await sp.locator('#saved-list .saved-item[data-shortcut="refund"] [data-action="delete"]').click();
  await sp.locator('#dialog button[type="submit"]').click();
  await sp.locator('#saved-list .saved-item[data-shortcut="refund"]').waitFor({ state: 'detached' });
  const left = await api(hub, 'GET', '/api/saved-replies', ann.token);
  assert.deepEqual(left.items.map((r) => [r.shortcut, r.text]), [['delay', 'Comptez 2 jours.']]);
  assert.deepEqual(realProblems(sp), []);
  assert.deepEqual(realProblems(page), []);
});
