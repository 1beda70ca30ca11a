// The demo's live pages in Debian's chromium, two browsers at a time: the
// shared sheet (an edit in one appears in the other, through bind_model) and
// the chat rooms (history from the database, new messages live, rooms apart).
//
//   cd tests/browser && npm ci && npm test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, runScenario, startDemoServer } from './harness.js';

const WAIT = 15000;
let server;
let browser;
let serial = 0;

before(async () => {
  server = await startDemoServer();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

const scenario = (t, body) => runScenario(t, () => [server], body);
// each test gets sheets and rooms of its own: the database is shared by the file
const unique = (prefix) => `${prefix}-${process.pid}-${Date.now()}-${serial += 1}`;

/** A new browser (context: cookies of its own) on `pathname`, connected. */
async function openIn(watch, label, pathname) {
  const page = watch(label, await (await browser.newContext()).newPage());
  const response = await page.goto(`${server.url}${pathname}`, { waitUntil: 'domcontentloaded' });
  assert.equal(response.status(), 200, `GET ${pathname}`);
  await page.waitForSelector('#ws-status[data-state="open"]', { timeout: WAIT });
  return page;
}

const cell = (row, col) => `#sheet-form input[name="c-${row}-${col}"]`;

async function editCell(page, row, col, value) {
  await page.fill(cell(row, col), value);
  await page.press(cell(row, col), 'Tab'); // commits: the change event
}

const waitValue = (page, selector, value) => page.waitForFunction(
  ([sel, expected]) => document.querySelector(sel).value === expected,
  [selector, value],
  { timeout: WAIT },
);

async function post(page, author, text) {
  await page.fill('#chat-author', author);
  await page.fill('#chat-text', text);
  await page.click('#chat-send');
}

const logOf = (page) => page.locator('#chat-log li').evaluateAll(
  (items) => items.map((li) => `${li.querySelector('.author').textContent}: ${li.querySelector('.text').textContent}`),
);

async function waitLog(page, expected) {
  await page.waitForFunction(
    (n) => document.querySelectorAll('#chat-log li').length >= n,
    expected.length,
    { timeout: WAIT },
  );
  assert.deepEqual(await logOf(page), expected);
}

describe('demo live pages in chromium', () => {
  test('shared sheet: an edit in one browser appears in the other, and is stored', async (t) => {
    await scenario(t, async (watch) => {
      const path = `/sheet/${unique('sheet')}/`;
      const first = await openIn(watch, 'first', path);
      const second = await openIn(watch, 'second', path);

      await editCell(first, 2, 3, 'hello from first');
      await waitValue(second, cell(2, 3), 'hello from first');
      await second.waitForFunction(() => document.querySelector('#sheet-status').textContent === 'D3 = hello from first', null, { timeout: WAIT });

      await editCell(second, 0, 0, '<b>42</b>');
      await waitValue(first, cell(0, 0), '<b>42</b>');
      assert.equal(await first.locator('#sheet-status').textContent(), 'A1 = <b>42</b>');

      // clearing a cell clears it everywhere
      await editCell(first, 2, 3, '');
      await waitValue(second, cell(2, 3), '');

      // a third browser opening the sheet later gets it from the database
      const third = await openIn(watch, 'third', path);
      assert.equal(await third.inputValue(cell(0, 0)), '<b>42</b>');
      assert.equal(await third.inputValue(cell(2, 3)), '');

      // another sheet is not touched
      const other = await openIn(watch, 'other', `/sheet/${unique('other')}/`);
      await editCell(first, 5, 5, 'only on the first sheet');
      await waitValue(third, cell(5, 5), 'only on the first sheet');
      assert.equal(await other.inputValue(cell(5, 5)), '');
    });
  });

  test('chat: messages are stored, shown live to the room and only to it', async (t) => {
    await scenario(t, async (watch) => {
      const room = unique('room');
      const ada = await openIn(watch, 'ada', `/chat/${room}/`);
      const bob = await openIn(watch, 'bob', `/chat/${room}/`);
      const elsewhere = await openIn(watch, 'elsewhere', `/chat/${unique('room')}/`);

      await post(ada, 'Ada', 'hello <everyone>');
      await waitLog(ada, ['Ada: hello <everyone>']);
      await waitLog(bob, ['Ada: hello <everyone>']);
      // the sender's text field is emptied, its name kept
      await waitValue(ada, '#chat-text', '');
      assert.equal(await ada.inputValue('#chat-author'), 'Ada');

      await post(bob, 'Bob', 'hi Ada');
      await waitLog(ada, ['Ada: hello <everyone>', 'Bob: hi Ada']);
      await waitLog(bob, ['Ada: hello <everyone>', 'Bob: hi Ada']);

      // an invalid message is refused with the form's errors, and not stored
      await bob.fill('#chat-author', 'Bob');
      await bob.fill('#chat-text', '');
      await bob.evaluate(() => document.querySelector('#chat-text').removeAttribute('required'));
      await bob.click('#chat-send');
      await bob.waitForFunction(() => /text/.test(document.querySelector('#chat-error').textContent), null, { timeout: WAIT });

      // the other room saw nothing
      await elsewhere.waitForTimeout(500);
      assert.deepEqual(await logOf(elsewhere), []);

      // the history: a newcomer gets the stored messages from the view
      const carol = await openIn(watch, 'carol', `/chat/${room}/`);
      assert.deepEqual(await logOf(carol), ['Ada: hello <everyone>', 'Bob: hi Ada']);
      await post(carol, 'Carol', 'joined late');
      await waitLog(ada, ['Ada: hello <everyone>', 'Bob: hi Ada', 'Carol: joined late']);
    });
  });
});
