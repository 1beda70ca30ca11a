// The DFSignals client: signal registry, call/connect/disconnect, and the
// WebSocket connection to the df_websockets endpoint.
//
// Connection life cycle (see README.md for the reasons):
//   start() -> connect: URL from DFSignals.wsurl, else from the `dfwsurl`
//     cookie (re-read until it appears, every cookiePollInterval ms);
//     the `dfwskey` cookie is set to this window's key just before the
//     handshake, so that another tab that overwrote it cannot give us its
//     topics;
//   open -> buffered calls sent FIFO, heartbeat every heartbeatInterval ms;
//     when nothing at all is received within heartbeatTimeout ms after a
//     heartbeat, the socket is abandoned and a new one opened;
//   close/error -> reconnect after backoffDelay(attempt): base doubling to
//     max, with jitter; the attempt counter is reset by a successful open.
//     A close with 1012 (service restart: the server drains a worker while
//     a new one serves) after a successful open reconnects at once, spread
//     over restartJitter ms so that every window does not come back in the
//     same millisecond.
//   recovery: each delivery of a topic with history carries its group
//     ("topic") and position ("pos"); the client keeps the last position
//     per group and, on every reconnect, asks the server to replay what it
//     missed (query parameter dfws_recover, docs/recovery.md). A gap the
//     server no longer has comes back as the signal
//     `df_websockets.recovery_failed` {topics: [...]}: those positions are
//     dropped and the page's handlers reload their data.
//   unknown window (the server has no topics for our key: the signal
//     `df_websockets.unknown_window`, or close code 4004) -> the page URL is
//     fetched again, which gives a new key with the page's topics (the
//     `dfwskey` cookie of the response), then the socket reconnects at once.
// Every socket callback first checks that its socket is still the current
// one, so a late event from an abandoned socket changes nothing.

import { BoundedIdSet } from './idcache.js';
import { backoffDelay } from './backoff.js';
import { getCookie } from './cookies.js';
import { Positions, parameterBudget, withQueryParameter } from './positions.js';

export const HEARTBEAT_MESSAGE = '--heartbeat--';
// what the server says to a window whose key has no topics
export const UNKNOWN_WINDOW_SIGNAL = 'df_websockets.unknown_window';
export const UNKNOWN_WINDOW_CODE = 4004;
// what the server says when it cannot replay what a window missed
export const RECOVERY_FAILED_SIGNAL = 'df_websockets.recovery_failed';
const OPEN = 1;
const LOG = '[df_websockets]';

export const DEFAULT_CONFIG = Object.freeze({
  heartbeatInterval: 60000, // ms between two heartbeats; 0 disables them
  heartbeatTimeout: 20000, // ms to get any frame after a heartbeat; 0 = never
  backoffBase: 500, // first reconnection delay (ms)
  backoffMax: 30000, // cap of the reconnection delay (ms)
  backoffJitter: 0.5, // up to this fraction of the delay is removed at random
  restartJitter: 100, // after a 1012 close: reconnect within [0, this) ms
  cookiePollInterval: 2000, // ms between two reads of a missing dfwsurl cookie
  dedupSize: 1000, // how many server signal ids are remembered
  maxBuffer: 1000, // calls kept while disconnected (oldest dropped beyond)
  urlCookieName: 'dfwsurl',
  keyCookieName: 'dfwskey',
  keyCookiePath: '/', // Django's CSRF_COOKIE_PATH default
  keyCookieDomain: null, // set it when CSRF_COOKIE_DOMAIN is set
  keyCookieMaxAge: 86400,
  keyStorageName: 'dfws.windowKey', // sessionStorage entry of this tab's key
  perTabKey: true, // write this tab's key into the cookie before connecting
  renewKey: true, // unknown window: fetch renewKeyUrl for a new key
  renewKeyUrl: null, // null: the page's own URL
  maxKeyRenewals: 3, // renewals in a row (no signal received between them) before giving up
  recover: true, // reconnect with dfws_recover: the server replays what was missed
  recoverMaxTopics: 64, // positions kept (the server reads at most 64)
  recoverMaxBytes: 8192, // length of the dfws_recover parameter, at most (and the
  // request line "GET <path>?<query> HTTP/1.1" within 8190 bytes, the servers' limit)
});

function isEmpty(value) {
  return value === undefined || value === null;
}

export class DFSignalsClient {
  /**
   * @param {Window} win the window whose document and cookies are used
   * @param {object} [options]
   * @param {Function} [options.WebSocket] constructor (default win.WebSocket)
   * @param {{setTimeout: Function, clearTimeout: Function}} [options.timers]
   * @param {() => number} [options.random] for the backoff jitter
   * @param {Function} [options.fetch] (default win.fetch) to renew the key
   * @param {Console} [options.logger]
   * @param {object} [options.config] overrides of DEFAULT_CONFIG
   * @param {object} [options.preset] an object the page assigned to
   *   window.DFSignals before the script ran: its wsurl, windowKey, config,
   *   registry and buffer are taken over
   */
  constructor(win, options = {}) {
    const preset = options.preset && typeof options.preset === 'object' ? options.preset : {};
    this._win = win;
    this._WebSocket = options.WebSocket || null;
    this._timers = options.timers || {
      setTimeout: (fn, delay) => win.setTimeout(fn, delay),
      clearTimeout: (handle) => win.clearTimeout(handle),
    };
    this._random = options.random || Math.random;
    this._fetch = options.fetch || (typeof win.fetch === 'function' ? win.fetch.bind(win) : null);
    this._logger = options.logger || win.console;

    // upstream-compatible public state
    this.connection = null; // the open WebSocket, or null
    this.buffer = Array.isArray(preset.buffer) ? preset.buffer.slice() : []; // JSON strings
    this.registry = Object.create(null); // signal name -> [handler]
    this.wsurl = typeof preset.wsurl === 'string' ? preset.wsurl : null;
    // ours
    this.config = { ...DEFAULT_CONFIG, ...(preset.config || {}), ...(options.config || {}) };
    this.windowKey = '';

    this._seen = new BoundedIdSet(this.config.dedupSize);
    // group -> position of the last message processed (recovery)
    this.positions = new Positions({
      maxGroups: this.config.recoverMaxTopics,
      maxBytes: this.config.recoverMaxBytes,
    });
    this._socket = null; // current socket (connecting or open)
    this._attempts = 0;
    this._reconnectTimer = null;
    this._heartbeatTimer = null;
    this._deadlineTimer = null;
    this._started = false;
    this._renewals = 0; // new keys asked for (unknown window)
    this._stopped = false;

    // bound, so that `const {call} = DFSignals` works like upstream's functions
    this.call = this.call.bind(this);
    this.connect = this.connect.bind(this);
    this.disconnect = this.disconnect.bind(this);

    if (preset.registry && typeof preset.registry === 'object') {
      for (const [name, handlers] of Object.entries(preset.registry)) {
        if (Array.isArray(handlers)) {
          handlers.forEach((fn) => this.connect(name, fn));
        }
      }
    }
    this._initWindowKey(typeof preset.windowKey === 'string' ? preset.windowKey : '');
  }

  // ---------------------------------------------------------------- signals

  /**
   * Register `fn(opts, id)` for signal `name`. Several handlers may share a
   * name; they run in registration order.
   */
  connect(name, fn) {
    if (typeof fn !== 'function') {
      this._logger.error(`${LOG} connect("${name}"): the handler is not a function`);
      return;
    }
    if (!this.registry[name]) {
      this.registry[name] = [];
    }
    this.registry[name].push(fn);
  }

  /**
   * Remove handler `fn` of signal `name` (every registration of it), or all
   * handlers of `name` when fn is omitted. Returns true when one was removed.
   */
  disconnect(name, fn) {
    const handlers = this.registry[name];
    if (!handlers) {
      return false;
    }
    if (fn === undefined) {
      delete this.registry[name];
      return true;
    }
    const kept = handlers.filter((handler) => handler !== fn);
    const removed = kept.length !== handlers.length;
    if (kept.length) {
      this.registry[name] = kept;
    } else {
      delete this.registry[name];
    }
    return removed;
  }

  /**
   * Call signal `name`: run the local handlers and, when `id` is absent
   * (a call made by the page), send it to the server (buffered until the
   * socket is open). A call carrying an `id` comes from the server: an id
   * seen recently is dropped (the server sends one copy per matching topic).
   * Always returns false, so that `onclick="return DFSignals.call(...)"`
   * cancels the default action as with upstream.
   */
  call(name, opts, id) {
    const fromServer = !isEmpty(id);
    if (fromServer && !this._seen.add(id)) {
      return false;
    }
    const args = isEmpty(opts) ? {} : opts;
    this._runHandlers(name, args, id);
    if (!fromServer) {
      let message;
      try {
        message = JSON.stringify({ signal: name, opts: args });
      } catch (err) {
        this._logger.error(`${LOG} cannot encode the options of "${name}"`, err);
        return false;
      }
      this._send(message);
    }
    return false;
  }

  _runHandlers(name, args, id) {
    const handlers = this.registry[name];
    if (handlers) {
      for (const handler of handlers.slice()) {
        try {
          handler(args, id);
        } catch (err) {
          this._logger.error(`${LOG} handler of "${name}" failed`, err);
        }
      }
    }
  }

  _send(message) {
    const ws = this.connection;
    if (ws && ws.readyState === OPEN) {
      try {
        ws.send(message);
        return;
      } catch (err) {
        this._logger.warn(`${LOG} send failed, message buffered`, err);
      }
    }
    this.buffer.push(message);
    const max = Math.max(1, this.config.maxBuffer);
    while (this.buffer.length > max) {
      const dropped = this.buffer.shift();
      this._logger.warn(`${LOG} buffer full, dropped ${dropped}`);
    }
  }

  // ------------------------------------------------------------- window key

  _storage() {
    try {
      return this._win.sessionStorage || null;
    } catch (err) {
      return null; // storage disabled (privacy settings, sandboxed iframe)
    }
  }

  /**
   * This tab's window key: a preset DFSignals.windowKey, else the `dfwskey`
   * cookie as it is when the page loads (the response that produced this
   * page has just set it), else the key this tab remembered in
   * sessionStorage. Stored back into sessionStorage.
   */
  _initWindowKey(presetKey) {
    const storage = this._storage();
    let key = presetKey || this._readCookie(this.config.keyCookieName);
    if (!key && storage) {
      try {
        key = storage.getItem(this.config.keyStorageName) || '';
      } catch (err) {
        key = '';
      }
    }
    this._setWindowKey(key || '');
  }

  _setWindowKey(key) {
    this.windowKey = key;
    const storage = this._storage();
    if (key && storage) {
      try {
        storage.setItem(this.config.keyStorageName, key);
      } catch (err) {
        // quota or disabled storage: the in-memory key is enough
      }
    }
  }

  /**
   * The server has no topics for our key (`opts`: {code, reason}): the
   * window would stay connected but receive nothing. Abandon the socket,
   * fetch the page again (a page load gets a new key, with the topics the
   * view sets, in the `dfwskey` cookie of the response) and reconnect with
   * that key. Page handlers of UNKNOWN_WINDOW_SIGNAL run either way (the
   * server's message, or the close code); `renewKey: false` leaves it to
   * them (e.g. location.reload()).
   */
  _renewWindowKey(ws, opts) {
    if (ws !== this._socket) {
      return;
    }
    this._teardown();
    try {
      ws.close(1000, 'new window key');
    } catch (err) {
      // already closing
    }
    const cfg = this.config;
    const url = cfg.renewKeyUrl || (this._win.location ? this._win.location.href : '');
    const why = opts && opts.reason ? opts.reason : 'unknown window key';
    if (!cfg.renewKey) {
      this._logger.warn(`${LOG} the server does not know this window (${why}); renewKey is off`);
      return;
    }
    if (!this._fetch || !url || this._renewals >= cfg.maxKeyRenewals) {
      this._logger.error(`${LOG} the server does not know this window (${why}) and no new key `
        + 'can be had: reload the page to receive signals again');
      return;
    }
    this._renewals += 1;
    const oldKey = this.windowKey;
    this._logger.warn(`${LOG} the server does not know this window (${why}): getting a new key from ${url}`);
    const done = () => {
      const key = this._readCookie(cfg.keyCookieName);
      if (!key || key === oldKey) {
        this._logger.error(`${LOG} ${url} gave no new window key: reload the page to receive signals again`);
        return;
      }
      this._setWindowKey(key);
      this._attempts = 0;
      this._connectNow();
    };
    let pending;
    try {
      pending = Promise.resolve(this._fetch(url, { credentials: 'same-origin', cache: 'no-store' }));
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(done, (err) => {
      this._logger.error(`${LOG} cannot fetch ${url} for a new window key`, err);
      this._scheduleReconnect();
    });
  }

  _readCookie(name) {
    let cookieString = '';
    try {
      cookieString = this._win.document.cookie;
    } catch (err) {
      return ''; // sandboxed documents throw on cookie access
    }
    return getCookie(cookieString, name);
  }

  /** Put this tab's key into the `dfwskey` cookie before a handshake. */
  _applyWindowKeyCookie() {
    const cfg = this.config;
    if (!cfg.perTabKey || !this.windowKey) {
      return;
    }
    if (this._readCookie(cfg.keyCookieName) === this.windowKey) {
      return;
    }
    let cookie = `${cfg.keyCookieName}=${encodeURIComponent(this.windowKey)}`;
    cookie += `; path=${cfg.keyCookiePath || '/'}`;
    if (cfg.keyCookieDomain) {
      cookie += `; domain=${cfg.keyCookieDomain}`;
    }
    if (cfg.keyCookieMaxAge) {
      cookie += `; max-age=${cfg.keyCookieMaxAge}`;
    }
    cookie += '; SameSite=Lax';
    if (this._win.location && this._win.location.protocol === 'https:') {
      cookie += '; Secure';
    }
    try {
      this._win.document.cookie = cookie;
    } catch (err) {
      this._logger.warn(`${LOG} cannot write the ${cfg.keyCookieName} cookie`, err);
    }
  }

  // ------------------------------------------------------------- connection

  /** Resolve the endpoint URL, or return "" when none is known yet. */
  _resolveUrl() {
    if (isEmpty(this.wsurl)) {
      const fromCookie = this._readCookie(this.config.urlCookieName);
      if (!fromCookie) {
        return '';
      }
      this.wsurl = fromCookie;
    }
    const url = String(this.wsurl);
    if (url.startsWith('/') && !url.startsWith('//') && this._win.location) {
      const loc = this._win.location;
      return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}${url}`;
    }
    return url;
  }

  /** Start connecting (idempotent). */
  start() {
    this._started = true;
    this._stopped = false;
    this._connectNow();
  }

  /** Close the socket and stop reconnecting (page hidden or unloaded). */
  stop() {
    this._stopped = true;
    this._clearTimer('_reconnectTimer');
    const ws = this._socket;
    this._teardown();
    if (ws) {
      try {
        ws.close(1000, 'page hidden');
      } catch (err) {
        // already closed
      }
    }
  }

  /** Reconnect after stop() (page restored from the back/forward cache). */
  resume() {
    if (this._started) {
      this.start();
    }
  }

  /** Number of reconnection attempts since the last successful open. */
  get attempts() {
    return this._attempts;
  }

  _clearTimer(slot) {
    if (this[slot] !== null) {
      this._timers.clearTimeout(this[slot]);
      this[slot] = null;
    }
  }

  _connectNow() {
    if (this._stopped || this._socket) {
      return;
    }
    this._clearTimer('_reconnectTimer');
    const url = this._resolveUrl();
    if (!url) {
      if (this.wsurl === '') {
        return; // the page disabled the connection
      }
      // no dfwsurl cookie yet: a later response (or script) may set it
      this._reconnectTimer = this._timers.setTimeout(() => {
        this._reconnectTimer = null;
        this._connectNow();
      }, this.config.cookiePollInterval);
      return;
    }
    const WebSocketClass = this._WebSocket || this._win.WebSocket;
    if (typeof WebSocketClass !== 'function') {
      this._logger.error(`${LOG} this browser has no WebSocket`);
      return;
    }
    this._applyWindowKeyCookie();
    let ws;
    try {
      ws = new WebSocketClass(this._recoveryUrl(url));
    } catch (err) {
      this._logger.error(`${LOG} cannot open ${url}`, err);
      this._scheduleReconnect();
      return;
    }
    this._socket = ws;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onerror = (event) => this._onError(ws, event);
    ws.onclose = (event) => this._onClose(ws, event);
  }

  /**
   * `url` plus the dfws_recover parameter when this window has positions,
   * i.e. when it received messages on an earlier socket (never on the
   * first connection of the page: nothing was received yet).
   */
  _recoveryUrl(url) {
    if (!this.config.recover || !this.positions.size) {
      return url;
    }
    return withQueryParameter(url, this.positions.queryParameter(parameterBudget(url)));
  }

  _scheduleReconnect(serviceRestart = false) {
    if (this._stopped || this._reconnectTimer !== null) {
      return;
    }
    const cfg = this.config;
    const delay = serviceRestart && this._attempts === 0
      ? Math.floor(this._random() * cfg.restartJitter)
      : backoffDelay(this._attempts, {
        base: cfg.backoffBase,
        max: cfg.backoffMax,
        jitter: cfg.backoffJitter,
        random: this._random,
      });
    this._attempts += 1;
    this._logger.info(`${LOG} reconnecting in ${delay} ms (attempt ${this._attempts})`);
    this._reconnectTimer = this._timers.setTimeout(() => {
      this._reconnectTimer = null;
      this._connectNow();
    }, delay);
  }

  _teardown() {
    this._clearTimer('_heartbeatTimer');
    this._clearTimer('_deadlineTimer');
    this.connection = null;
    this._socket = null;
  }

  _onOpen(ws) {
    if (ws !== this._socket) {
      return;
    }
    this.connection = ws;
    this._attempts = 0;
    const pending = this.buffer.splice(0, this.buffer.length);
    for (let i = 0; i < pending.length; i += 1) {
      try {
        ws.send(pending[i]);
      } catch (err) {
        this._logger.warn(`${LOG} flush interrupted`, err);
        this.buffer.unshift(...pending.slice(i));
        break;
      }
    }
    this._scheduleHeartbeat();
  }

  _scheduleHeartbeat() {
    const interval = this.config.heartbeatInterval;
    if (!(interval > 0)) {
      return;
    }
    this._heartbeatTimer = this._timers.setTimeout(() => {
      this._heartbeatTimer = null;
      this._sendHeartbeat();
    }, interval);
  }

  _sendHeartbeat() {
    const ws = this.connection;
    if (!ws || ws !== this._socket) {
      return;
    }
    try {
      ws.send(HEARTBEAT_MESSAGE);
    } catch (err) {
      this._logger.warn(`${LOG} heartbeat failed`, err);
    }
    const timeout = this.config.heartbeatTimeout;
    if (timeout > 0 && this._deadlineTimer === null) {
      this._deadlineTimer = this._timers.setTimeout(() => {
        this._deadlineTimer = null;
        this._onHeartbeatTimeout(ws);
      }, timeout);
    }
    this._scheduleHeartbeat();
  }

  _onHeartbeatTimeout(ws) {
    if (ws !== this._socket) {
      return;
    }
    this._logger.warn(`${LOG} no answer within ${this.config.heartbeatTimeout} ms: reconnecting`);
    this._teardown();
    try {
      ws.close(4000, 'heartbeat timeout');
    } catch (err) {
      // the socket may be in a state where close() throws; it is abandoned
    }
    this._scheduleReconnect();
  }

  _onMessage(ws, event) {
    if (ws !== this._socket) {
      return;
    }
    this._clearTimer('_deadlineTimer'); // any frame proves the server is alive
    const data = event.data;
    if (typeof data !== 'string') {
      this._logger.warn(`${LOG} binary frame ignored`);
      return;
    }
    if (data === HEARTBEAT_MESSAGE) {
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      this._logger.error(`${LOG} invalid JSON from the server: ${data.slice(0, 200)}`, err);
      return;
    }
    if (!message || typeof message.signal !== 'string' || isEmpty(message.signal_id)) {
      this._logger.warn(`${LOG} message without signal or signal_id ignored: ${data.slice(0, 200)}`);
      return;
    }
    if (message.signal === UNKNOWN_WINDOW_SIGNAL) {
      this._renewWindowKey(ws, message.opts);
    } else {
      this._renewals = 0; // this key works: a later restart may renew it again
    }
    if (message.signal === RECOVERY_FAILED_SIGNAL) {
      // dropped before the page's handlers run: they reload the data, and
      // the next reconnect must not ask for a gap the server does not have
      const topics = message.opts && message.opts.topics;
      this.positions.drop(topics);
      this._logger.warn(`${LOG} missed signals could not be recovered for ${
        Array.isArray(topics) ? topics.length : 0} topic(s)`);
    }
    this.call(message.signal, message.opts, message.signal_id);
    // processed (or a copy already processed, same signal_id): its position
    // is ours either way; a message without topic/pos changes nothing
    if (message.topic !== undefined) {
      this.positions.update(message.topic, message.pos);
    }
  }

  _onError(ws, event) {
    if (ws !== this._socket) {
      return;
    }
    this._logger.warn(`${LOG} WebSocket error`, event && event.message ? event.message : '');
  }

  _onClose(ws, event) {
    if (ws !== this._socket) {
      return;
    }
    if (event && event.code === UNKNOWN_WINDOW_CODE) {
      const opts = { code: event.code, reason: event.reason || 'unknown window key' };
      this._renewWindowKey(ws, opts);
      this._runHandlers(UNKNOWN_WINDOW_SIGNAL, opts);
      return;
    }
    this._teardown();
    if (!this._stopped) {
      const code = event && event.code !== undefined ? event.code : '?';
      this._logger.info(`${LOG} connection closed (code ${code})`);
      this._scheduleReconnect(code === 1012);
    }
  }
}
