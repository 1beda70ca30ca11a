// `manage.py runserver` (dfws-asgi under Django's autoreloader) with a page
// open in Debian's chromium: editing the demo's signals module (which only
// the server process imports) restarts the server, the page reconnects by
// itself, and its next call runs the new code. A copy of the demo is served,
// so that the test can edit it.
//
//   cd tests/browser && npm ci && npm test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEMO_DIR, PYTHON, launchBrowser, runScenario, startDemoServer,
} from './harness.js';

const WAIT = 15000;
const RELOAD_WAIT = 60000;
const SERVING = /serving df_websockets\.devserver:application/g;
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
});

describe('manage.py runserver in chromium', () => {
  test('an edit of a signal handler reloads the server; the next call runs the new code', async (t) => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'dfws-runserver-demo-'));
    t.after(() => fs.rmSync(copy, { recursive: true, force: true }));
    fs.cpSync(DEMO_DIR, copy, { recursive: true, filter: (src) => !src.includes('__pycache__') });
    const server = await startDemoServer({
      dir: copy,
      env: { DFWS_DEMO_CACHE_DIR: path.join(copy, 'cache') }, // topics outlive a reload
      argv: (port) => [PYTHON, 'manage.py', 'runserver', `127.0.0.1:${port}`],
    });
    const servings = () => (server.log().match(SERVING) || []).length;
    try {
      await runScenario(t, () => [server], async (watch) => {
        assert.equal(servings(), 1, 'runserver serves through dfws-asgi');
        const page = watch('page', await (await browser.newContext()).newPage());
        await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded' });
        await page.waitForSelector('#ws-status[data-state="open"]', { timeout: WAIT });
        await page.evaluate(() => {
          window.firstSocket = window.DFSignals.connection;
          window.sameDocument = true;
        });
        await page.click('#hello-btn');
        await page.waitForFunction(() => /^The server answered through the websocket \(\d+\)\.$/.test(
          document.querySelector('#hello-target').textContent,
        ), null, { timeout: WAIT });

        const signals = path.join(copy, 'demo', 'signals.py');
        const source = fs.readFileSync(signals, 'utf8');
        const edited = source.replace('"The server answered through the websocket (%d)."', '"Reloaded code answered (%d)."');
        assert.notEqual(edited, source);
        fs.writeFileSync(signals, edited);

        // a new server, and the page's own reconnection to it
        await page.waitForFunction(() => window.DFSignals.connection
          && window.DFSignals.connection !== window.firstSocket
          && window.DFSignals.connection.readyState === 1, null, { timeout: RELOAD_WAIT });
        assert.equal(servings(), 2, server.log());
        assert.equal(await page.evaluate(() => window.sameDocument), true, 'the page was reloaded');
        await page.click('#hello-btn');
        await page.waitForFunction(() => /^Reloaded code answered \(\d+\)\.$/.test(
          document.querySelector('#hello-target').textContent,
        ), null, { timeout: WAIT });
      });
    } finally {
      await server.stop();
    }
  });
});
