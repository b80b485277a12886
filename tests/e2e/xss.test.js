// Customer text is shown as text, never as markup, in the widget and the console.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgent, api } from './lib/hub.js';
import { suite } from './lib/suite.js';
import { newPage, realProblems } from './lib/browser.js';
import { signIn, openWidget, widgetSend, openRow, messageCard } from './lib/pages.js';

const PAYLOAD = '<img src=x onerror=window.__xss=1>';

const S = suite([['agent', 'Nora', 'admin']]);

test('an XSS payload in a customer message is rendered as text everywhere', async () => {
  const { hub, browser, agent } = S;
  const console_ = await newPage(browser);
  await signIn(console_, hub, agent.token);
  const widget = await newPage(browser);
  await openWidget(widget, hub);
  await widgetSend(widget, PAYLOAD);

  const row = console_.locator('#list .row', { hasText: '<img src=x' });
  await row.waitFor();
  assert.equal(await row.locator('.row-text').textContent(), PAYLOAD);
  await openRow(console_, '<img src=x');
  const card = messageCard(console_, '<img src=x');
  assert.equal(await card.locator('.bubble').textContent(), PAYLOAD);

  // the agent replies with markup too, and comments with it: all text
  await console_.fill('#reply-input', `<b>bold?</b> ${PAYLOAD}`);
  await console_.press('#reply-input', 'Enter');
  await console_.locator('#timeline .tl-reply', { hasText: '<b>bold?</b>' }).waitFor();
  await console_.click('.composer-tabs [data-mode="comment"]');
  await console_.fill('#comment-input', `note ${PAYLOAD}`);
  await console_.click('#composer-send');
  await console_.locator('#timeline .tl-comment', { hasText: 'note <img' }).waitFor();
  // a help question with markup
  await card.locator('[data-action="reopen"]').click();
  await card.locator('[data-action="assign"]').click();
  await card.locator('[data-action="request-help"]').click();
  await console_.fill('#dialog textarea[name="question"]', `why ${PAYLOAD}?`);
  await console_.click('#dialog button[type="submit"]');
  await card.locator('.help-box', { hasText: 'why <img' }).waitFor();
  await console_.locator('#timeline .tl-event', { hasText: 'why <img' }).waitFor();
  // the conversation list's preview of the comment is text too
  await console_.click('#conv-states a[data-state="open"]');
  await console_.locator('#list .row .row-text', { hasText: `note ${PAYLOAD}` }).waitFor();

  await widget.locator('#hub-chat-widget .hw-in .hw-bubble', { hasText: '<b>bold?</b>' }).waitFor();
  assert.equal(await widget.locator('#hub-chat-widget .hw-out .hw-bubble').first().textContent(), PAYLOAD);

  // give any injected image time to fail and fire its handler
  await console_.waitForTimeout(500);
  for (const page of [console_, widget]) {
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0);
    assert.equal(await page.evaluate(() => document.getElementById('hub-chat-widget')?.shadowRoot?.querySelectorAll('img').length ?? 0), 0);
    assert.equal(await page.locator('b', { hasText: 'bold?' }).count(), 0);
  }
  assert.deepEqual(realProblems(console_), []);
  assert.deepEqual(realProblems(widget), []);
});

test('API errors are shown politely', async () => {
  const { hub, browser, agent } = S;
  const page = await newPage(browser);
  // a wrong token on the sign-in page
  await page.goto(`${hub.url}/`);
  await page.fill('#login-token', 'not-a-token');
  await page.click('#login-submit');
  await page.locator('#login-error', { hasText: 'not recognised' }).waitFor();
  // a customer token is not an agent token
  const s = await api(hub, 'POST', '/api/widget/session', undefined, {});
  await page.fill('#login-token', s.token);
  await page.click('#login-submit');
  await page.locator('#login-error', { hasText: 'not an agent token' }).waitFor();

  await signIn(page, hub, agent.token);
  // an action that is no longer possible: another agent takes the message just before ours lands
  const other = await createAgent(hub, 'Omar', 'agent');
  const m = await api(hub, 'POST', '/api/widget/messages', s.token, { text: 'Is the opal pendant dimmable?' });
  await openRow(page, 'opal pendant');
  const card = messageCard(page, 'opal pendant');
  await page.route('**/api/messages/*/assign', async (route) => {
    await api(hub, 'POST', `/api/messages/${m.message.id}/assign`, other.token);
    await route.continue();
  });
  await card.locator('[data-action="assign"]').click();
  await page.locator('.toast.error', { hasText: 'no longer possible' }).waitFor();
  await card.locator('.msg-status', { hasText: 'with Omar' }).waitFor();
  await page.unroute('**/api/messages/*/assign');
  // reply after the session ended: the composer explains
  await api(hub, 'POST', `/api/conversations/${m.message.conversation_id}/end-session`, agent.token, {});
  await page.locator('.composer-notice', { hasText: 'session has ended' }).waitFor();
  assert.deepEqual(realProblems(page), []);
});
