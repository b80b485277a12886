// Search in the console: the sidebar's box (and "/"), results with the matching words
// marked, each opening its conversation at the message found; customers by name;
// an empty search said in words; the route kept on reload.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, shot, realProblems } from './lib/browser.js';
import { signIn } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee']]);

async function customerSays(session, text) {
  const r = await api(S.hub, 'POST', '/api/widget/messages', session.token, { text });
  return r.message;
}

test('an agent finds a message, a note and a customer from the search box', async () => {
  const { hub, browser, ann } = S;
  const marie = await api(hub, 'POST', '/api/widget/session', undefined, { name: 'Marie Dupont', email: 'marie@example.com' });
  const other = await api(hub, 'POST', '/api/widget/session', undefined, { name: 'Paul Martin' });
  const asked = await customerSays(marie, 'Je voudrais un remboursement pour la commande 4411');
  await customerSays(marie, 'Et aussi une facture');
  await customerSays(other, 'Où est mon colis ?');
  await api(hub, 'POST', `/api/conversations/${asked.conversation_id}/comments`, ann.token, { text: 'Remboursé par virement, voir la compta' });

  const page = await newPage(browser);
  await signIn(page, hub, ann.token);
  // "/" goes to the box from anywhere but a field
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'search-input');
  await page.keyboard.type('REMBOURS');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/search/REMBOURS');
  await page.locator('#list-title', { hasText: 'Search: “REMBOURS”' }).waitFor();
  const rows = page.locator('#list .row.result');
  await rows.nth(1).waitFor();
  assert.equal(await rows.count(), 2, 'the message and the note, not the others');
  // newest first: the note, then the message, with the words marked and the customer named
  assert.match(await rows.nth(0).textContent(), /Remboursé par virement/);
  assert.match(await rows.nth(0).textContent(), /Internal comment · Ann Lee/);
  assert.match(await rows.nth(1).textContent(), /Customer message/);
  assert.equal(await rows.nth(0).locator('mark').first().textContent(), 'Remboursé');
  assert.equal(await rows.nth(1).locator('mark').first().textContent(), 'remboursement');
  await rows.nth(1).locator('.row-who', { hasText: 'Marie Dupont' }).waitFor();
  await rows.nth(1).locator('.badge', { hasText: 'Open' }).waitFor();

  // a result opens its conversation on the message found
  await rows.nth(1).click();
  await page.locator(`#timeline .tl-message.focused[data-message-id="${asked.id}"]`).waitFor();
  assert.match(decodeURIComponent(await page.evaluate(() => location.hash)), /^#\/search\/REMBOURS\/c\//);
  await shot(page, 'console-search');

  // a customer by name (the conversation's opening), from the same box
  await page.fill('#search-input', 'paul');
  await page.press('#search-input', 'Enter');
  await page.locator('#list .row.result', { hasText: 'Paul Martin' }).waitFor();
  assert.match(await page.locator('#list .row.result').first().textContent(), /Customer/);

  // nothing found, in words; a query of one letter is refused before it is sent
  await page.fill('#search-input', 'zzyzx');
  await page.press('#search-input', 'Enter');
  await page.locator('#list .list-empty', { hasText: 'Nothing matches “zzyzx”' }).waitFor();
  await page.fill('#search-input', 'a');
  await page.press('#search-input', 'Enter');
  await page.locator('#search-error', { hasText: 'two letters' }).waitFor();
  assert.match(decodeURIComponent(await page.evaluate(() => location.hash)), /zzyzx/);

  // the route survives a reload, box included; a message sent since is found
  await customerSays(other, 'Mon colis est arrivé, merci');
  await page.goto(`${hub.url}/#/search/colis`);
  await page.reload();
  await page.locator('#list .row.result').nth(1).waitFor();
  assert.equal(await page.inputValue('#search-input'), 'colis');
  assert.match(await page.locator('#list .row.result').first().textContent(), /arrivé/);
  assert.deepEqual(realProblems(page), []);
});
