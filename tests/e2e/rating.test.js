// Customer ratings: once the agent ends the session, the widget asks for stars and an
// optional comment; the conversation's owner is told, the timeline says it, and Stats
// counts it. A reload of the widget shows the rating given.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn, openConversationById, customerWritesFirst, openStats } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee']]);

const W = '#hub-chat-widget';

test('the customer rates an ended conversation; its owner, the timeline and Stats show it', async () => {
  const { hub, browser, ann } = S;
  const customer = await newPage(browser);
  const convId = await customerWritesFirst(customer, hub, ann.token, 'Where is my refund?');
  await api(hub, 'POST', `/api/conversations/${convId}/replies`, ann.token, { text: 'It left today.' });

  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  await openConversationById(annPage, convId);
  // Ann looks at another screen meanwhile, so that the rating is told to her as a notice
  const stat = await openStats(annPage);
  await annPage.locator('#stats-satisfaction ~ p', { hasText: 'No rating yet' }).waitFor();

  // No stars while the conversation goes on; they come with the end of the session.
  assert.equal(await customer.locator(`${W} .hw-star`).first().isVisible(), false);
  await api(hub, 'POST', `/api/conversations/${convId}/end-session`, ann.token, { reason: 'solved' });
  const fourth = customer.locator(`${W} .hw-star[data-score="4"]`);
  await fourth.waitFor();
  await fourth.click();
  await customer.locator(`${W} .hw-rating-comment`).waitFor();
  assert.equal(await customer.locator(`${W} .hw-star-on`).count(), 4);
  assert.equal(await fourth.getAttribute('aria-checked'), 'true');
  await customer.fill(`${W} .hw-rating-comment`, 'Quick answer, thanks');
  await customer.click(`${W} .hw-rating-send`);
  await customer.locator(`${W} .hw-rating-thanks:not([hidden])`).waitFor();

  // The owner is told, with the stars and the words.
  await annPage.locator('.toast', { hasText: 'rated your conversation ★★★★☆: “Quick answer, thanks”' }).waitFor();
  // Stats counts it (read again on Refresh).
  await annPage.click('#stats-refresh');
  await stat('satisfied_percent').waitFor();
  assert.equal(await stat('satisfied_percent').textContent(), '100 %');
  assert.equal(await stat('rating_average').textContent(), '4 / 5');
  assert.equal(await stat('ratings').textContent(), '1');
  // The timeline says it.
  await openConversationById(annPage, convId);
  // (two events: the stars as clicked, then with the comment)
  const lines = annPage.locator('#timeline .tl-event[data-kind="conversation.rated"]');
  await lines.nth(1).waitFor();
  assert.match(await lines.nth(0).textContent(), /rated the conversation ★★★★☆ \(4\/5\)/);
  const line = lines.nth(1);
  assert.match(await line.textContent(), /rated the conversation ★★★★☆ \(4\/5\): “Quick answer, thanks”/);

  // A reload of the widget shows the rating given, and thanks.
  await customer.reload();
  await customer.locator(`${W} .hw-panel:not([hidden])`).waitFor();
  await customer.locator(`${W} .hw-rating-thanks:not([hidden])`).waitFor();
  assert.equal(await customer.locator(`${W} .hw-star-on`).count(), 4);
  assert.equal(await customer.locator(`${W} .hw-rating-form`).isHidden(), true);

  // A second thought on the stars keeps the words already given.
  await customer.click(`${W} .hw-star[data-score="5"]`);
  await customer.locator(`${W} .hw-star[data-score="5"].hw-star-on`).waitFor();
  const conv = await api(hub, 'GET', `/api/conversations/${convId}`, ann.token);
  const last = conv.timeline.filter((it) => it.kind === 'conversation.rated').pop();
  assert.deepEqual([last.data.score, last.data.comment], [5, 'Quick answer, thanks']);

  assert.deepEqual(realProblems(annPage), []);
  assert.deepEqual(realProblems(customer), []);
  await annPage.context().close();
  await customer.context().close();
});
