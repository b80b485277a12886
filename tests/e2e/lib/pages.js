// What a person does in the console and the widget, as reusable steps.

import { api } from './hub.js';

/** Opens the console and signs in with an agent token; waits until live. */
export async function signIn(page, hub, token) {
  await page.goto(`${hub.url}/`);
  await page.fill('#login-token', token);
  await page.click('#login-submit');
  await page.waitForSelector('#conn.conn-live');
  await page.waitForSelector('#me .me-name', { state: 'attached' });
}

/** Opens the demo site and the widget panel. */
export async function openWidget(page, hub) {
  await page.goto(`${hub.url}/widget`);
  await page.click('#hub-chat-widget .hw-launcher');
  await page.waitForSelector('#hub-chat-widget .hw-panel:not([hidden])');
}

/** Types and sends a customer message; waits until the hub acknowledged it. */
export async function widgetSend(page, text) {
  const before = await page.locator('#hub-chat-widget .hw-out').count();
  await page.fill('#hub-chat-widget .hw-input', text);
  await page.press('#hub-chat-widget .hw-input', 'Enter');
  await page.locator('#hub-chat-widget .hw-out').nth(before).locator('.hw-meta', { hasText: /· Sent$/ }).waitFor();
}

/** Folder link in the sidebar. */
export function folder(page, key) {
  return page.locator(`#folders a[data-folder="${key}"]`);
}

export async function folderCount(page, key) {
  return (await folder(page, key).locator('.count').textContent()).trim();
}

/** Opens the first list row containing `text`. */
export async function openRow(page, text) {
  await page.locator('#list .row', { hasText: text }).first().click();
  await page.waitForSelector('#conv-view .conv-head h2');
}

/** The timeline card of the customer message containing `text`. */
export function messageCard(page, text) {
  return page.locator('#timeline .tl-message', { hasText: text });
}

/** Opens a conversation by its id (through the All folder), once its header is drawn. */
export async function openConversationById(page, convId) {
  await page.evaluate((id) => { location.hash = `#/inbox/all/c/${encodeURIComponent(id)}`; }, convId);
  await page.waitForSelector('#conv-view .conv-head h2');
}

/** A customer opens the demo site's widget and writes `text`; returns the conversation id. */
export async function customerWritesFirst(page, hub, agentToken, text) {
  await openWidget(page, hub);
  await widgetSend(page, text);
  const all = await api(hub, 'GET', '/api/inbox?folder=all', agentToken);
  return all.items.find((m) => m.text === text).conversation_id;
}

/** Opens the Stats screen; returns the value of a figure by its key (a locator). */
export async function openStats(page) {
  await page.click('#nav-stats');
  await page.waitForFunction(() => location.hash === '#/stats');
  return (key) => page.locator(`.stat[data-stat="${key}"] .stat-value`);
}
