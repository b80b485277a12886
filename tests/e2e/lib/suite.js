// A test file's usual set-up, in one call: a hub and a browser started before its tests
// and closed after them, agents created once, and the hub's state printed after a
// failed test.

import { before, after } from 'node:test';
import { startHub, createAgent, reportFailures } from './hub.js';
import { launch } from './browser.js';

/**
 * agents: [key, name, role = 'agent'] each. Returns an object whose `hub`, `browser`
 * and agent keys are filled once `before` has run (read them inside the tests).
 */
export function suite(agents = []) {
  const s = {};
  reportFailures(() => s.hub);
  before(async () => {
    s.hub = await startHub();
    s.browser = await launch();
    for (const [key, name, role = 'agent'] of agents) s[key] = await createAgent(s.hub, name, role);
  });
  after(async () => {
    await s.browser?.close();
    await s.hub?.stop();
  });
  return s;
}
