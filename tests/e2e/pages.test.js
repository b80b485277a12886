// Page views (an extension): the widget tells the hub which page of the site its
// customer is on; while the conversation is open, the agent's timeline says it, live,
// and the Customer tab shows the latest page as a link.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suite } from './lib/suite.js';
import { newPage } from './lib/browser.js';
import { signIn, openConversationById, customerWritesFirst, widgetSend } from './lib/pages.js';

const S = suite([['ann', 'Ann Lee']]);

test('the agent sees the page the customer wrote from, and the next one, live', async () => {
  const { hub, browser, ann } = S;
  const customer = await newPage(browser);
  // The first message opens the conversation; the page it was written on goes with it.
  const convId = await customerWritesFirst(customer, hub, ann.token, 'Is the opal pendant in stock?');

  const annPage = await newPage(browser);
  await signIn(annPage, hub, ann.token);
  await openConversationById(annPage, convId);
  const pages = annPage.locator('#timeline .tl-event[data-kind="conversation.page"]');
  await pages.first().waitFor();
  const host = new URL(hub.url).host;
  assert.match(await pages.first().textContent(), new RegExp(`went to “Maison Lumière — lamps made to last \\(chat widget demo\\)” \\(${host.replace(/[.]/g, '\\.')}/widget\\)`));

  // The shop moves on without a reload (its own router): the timeline follows, live;
  // pages in a row are one row, the latest, which says how many came before.
  await customer.evaluate(() => {
    document.title = 'Opal pendant';
    history.pushState({}, '', '/widget?product=opal');
  });
  await pages.first().locator('.tl-event-text', { hasText: 'Opal pendant' }).waitFor();
  assert.equal(await pages.count(), 1);
  assert.match(await pages.first().textContent(), new RegExp(`went to “Opal pendant” \\(${host.replace(/[.]/g, '\\.')}/widget\\?product=opal\\)after 1 other page`));
  assert.match(await pages.first().locator('.tl-event-more').getAttribute('title'), /^Maison Lumière — lamps made to last/);
  // The same address again says nothing more (checked below, after a later message).
  await customer.evaluate(() => history.replaceState({}, '', '/widget?product=opal'));
  await widgetSend(customer, 'The 30 cm one, please');

  // The Customer tab shows the latest page, as a link that opens apart.
  await annPage.click('#conv-tab-customer');
  const link = annPage.locator('#customer .customer-facts a.customer-page');
  await link.waitFor();
  assert.equal(await link.getAttribute('href'), `${hub.url}/widget?product=opal`);
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.match(await link.textContent(), /^Opal pendant — /);

  // Back on the timeline: the later message is there, and no page view after it; the
  // Activities tab lists each page view.
  await annPage.click('#conv-tab-timeline');
  await annPage.locator('#timeline', { hasText: 'The 30 cm one, please' }).waitFor();
  assert.equal(await pages.count(), 1);
  await annPage.click('#conv-tab-activities');
  await annPage.locator('#activities .activity').first().waitFor();
  assert.equal(await annPage.locator('#activities .activity[data-kind="conversation.page"]').count(), 2);
  // A page after the message is a row of its own.
  await customer.evaluate(() => { document.title = 'Checkout'; history.pushState({}, '', '/widget?step=checkout'); });
  await annPage.click('#conv-tab-timeline');
  await pages.nth(1).locator('.tl-event-text', { hasText: 'Checkout' }).waitFor();
  assert.equal(await pages.nth(1).locator('.tl-event-more').count(), 0);
});
