// Test helpers: a jsdom window, a manual clock, a fake WebSocket class, a
// logger that records what it is given, and a client built on them.
import { JSDOM, CookieJar } from 'jsdom';
import { DFSignalsClient } from '../src/client.js';

export { JSDOM, CookieJar };

export const ORIGIN = 'http://example.com:8000';

/**
 * A jsdom window for `html` at ORIGIN. `cookies` are set in the (possibly
 * shared) cookie jar before the document exists, like a server response.
 */
export function makeWindow(html = '<!DOCTYPE html><body></body>', { cookieJar, cookies = [], url } = {}) {
  const jar = cookieJar || new CookieJar();
  const pageUrl = url || `${ORIGIN}/page/`;
  for (const cookie of cookies) {
    jar.setCookieSync(cookie, pageUrl);
  }
  const dom = new JSDOM(html, { url: pageUrl, cookieJar: jar });
  return { dom, window: dom.window, document: dom.window.document, jar };
}

/** Timers driven by hand: nothing runs until tick(). */
export class FakeClock {
  constructor() {
    this.now = 0;
    this._timers = new Map();
    this._next = 1;
    this.setTimeout = this.setTimeout.bind(this);
    this.clearTimeout = this.clearTimeout.bind(this);
  }

  setTimeout(fn, delay = 0) {
    const id = this._next;
    this._next += 1;
    this._timers.set(id, { id, at: this.now + Math.max(0, Number(delay) || 0), fn, delay });
    return id;
  }

  clearTimeout(id) {
    this._timers.delete(id);
  }

  /** Delays (as requested) of the pending timers, oldest first. */
  pendingDelays() {
    return [...this._timers.values()].sort((a, b) => a.id - b.id).map((t) => t.delay);
  }

  get pendingCount() {
    return this._timers.size;
  }

  /** Advance time by `ms`, running due timers in order. */
  tick(ms = 0) {
    const end = this.now + ms;
    for (;;) {
      let due = null;
      for (const timer of this._timers.values()) {
        if (timer.at <= end && (due === null || timer.at < due.at || (timer.at === due.at && timer.id < due.id))) {
          due = timer;
        }
      }
      if (due === null) {
        break;
      }
      this._timers.delete(due.id);
      this.now = due.at;
      due.fn();
    }
    this.now = end;
  }
}

/** A WebSocket look-alike; instances are recorded on the class. */
export function fakeWebSocketClass(win) {
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closeCalls = [];
      // the cookie the browser would send with the handshake
      this.handshakeCookie = win ? win.document.cookie : '';
      FakeWebSocket.instances.push(this);
    }

    send(data) {
      if (this.readyState !== 1) {
        throw new Error('InvalidStateError: not open');
      }
      this.sent.push(data);
    }

    close(code, reason) {
      this.closeCalls.push({ code, reason });
      if (this.readyState < 2) {
        this.readyState = 2;
      }
    }

    // ---- driven by the test, as the server would
    serverOpen() {
      this.readyState = 1;
      if (this.onopen) this.onopen({ type: 'open' });
    }

    serverSend(data) {
      if (this.onmessage) this.onmessage({ type: 'message', data });
    }

    serverClose(code = 1006, reason = '') {
      this.readyState = 3;
      if (this.onclose) this.onclose({ type: 'close', code, reason });
    }

    serverError() {
      if (this.onerror) this.onerror({ type: 'error' });
    }

    static get last() {
      return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    }
  }
  FakeWebSocket.instances = [];
  FakeWebSocket.OPEN = 1;
  return FakeWebSocket;
}

/** A console replacement that keeps every line. */
export function recordingLogger() {
  const lines = [];
  const record = (level) => (...args) => {
    lines.push({ level, text: args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ') });
  };
  return {
    lines,
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    log: record('log'),
    matching(level, pattern) {
      return lines.filter((l) => l.level === level && pattern.test(l.text));
    },
  };
}

/** The decoded JSON frames a fake socket sent (heartbeats kept as strings). */
export function sentFrames(ws) {
  return ws.sent.map((s) => (s === '--heartbeat--' ? s : JSON.parse(s)));
}

export const URL_COOKIE = 'dfwsurl=ws%3A%2F%2Fexample.com%3A8000%2Fws%2F; Path=/';

/**
 * A DFSignalsClient on a jsdom window with `cookies`, the fake clock, fake
 * WebSocket class and recording logger; `fetch` is given to the client
 * when set. Returns {window, clock, WS, logger, client}.
 */
export function clientSetup({
  cookies = [URL_COOKIE, 'dfwskey=key-a; Path=/'], config = {}, preset, random, fetch,
} = {}) {
  const { window } = makeWindow(undefined, { cookies });
  const clock = new FakeClock();
  const WS = fakeWebSocketClass(window);
  const logger = recordingLogger();
  const client = new DFSignalsClient(window, {
    WebSocket: WS,
    timers: clock,
    logger,
    random: random || (() => 0),
    config,
    preset,
    ...(fetch ? { fetch } : {}),
  });
  return { window, clock, WS, logger, client };
}
