// Public entry of the df_websockets browser client.
//
// install(window) builds the client, registers the built-in html.* signals,
// binds `data-df-signal` attributes (at DOMContentLoaded and on every
// DOMContentAdded event), connects once the document is parsed (so that an
// inline script placed after ours can still preset DFSignals.wsurl), and sets
// window.DFSignals. The pages written for upstream keep working: the object
// has `connection, buffer, registry, wsurl, call, connect`, plus
// `disconnect`, `windowKey`, `config`, `positions`, `serializeForm`, `bind`,
// `start`, `stop`.

import {
  DFSignalsClient, DEFAULT_CONFIG, HEARTBEAT_MESSAGE, UNKNOWN_WINDOW_SIGNAL, UNKNOWN_WINDOW_CODE,
  RECOVERY_FAILED_SIGNAL,
} from './client.js';
import {
  Positions, parsePosition, parameterBudget, withQueryParameter, RECOVER_PARAM,
} from './positions.js';
import { builtinSignals, insertContent, DOM_CONTENT_ADDED } from './html.js';
import { createBinder, defaultEventName, shouldPrevent } from './binding.js';
import { serializeForm, setFormFieldValue, fieldValue } from './forms.js';
import { parseCookies, getCookie, decodeCookieValue } from './cookies.js';
import { backoffDelay } from './backoff.js';
import { BoundedIdSet } from './idcache.js';

const INSTALLED = Symbol.for('df_websockets.installed');

/**
 * Install the client on `win` and return it (window.DFSignals). A second
 * call (the bundle included twice) returns the existing client.
 *
 * @param {Window} win
 * @param {object} [options] see DFSignalsClient; plus `autoStart` (default
 *   true): connect when the document is ready
 */
export function install(win, options = {}) {
  const existing = win.DFSignals;
  if (existing && existing[INSTALLED]) {
    return existing;
  }
  const client = new DFSignalsClient(win, { ...options, preset: existing });
  Object.defineProperty(client, INSTALLED, { value: true });
  const doc = win.document;
  const timers = client._timers;
  const logger = client._logger;

  for (const [name, handler] of Object.entries(builtinSignals(win))) {
    client.connect(name, handler);
  }
  const binder = createBinder(win, {
    call: (name, opts) => client.call(name, opts),
    defer: (fn) => timers.setTimeout(fn, 0),
    logger,
  });
  client.bind = binder.bind;
  client.serializeForm = serializeForm;
  client.setFormFieldValue = setFormFieldValue;

  doc.addEventListener(DOM_CONTENT_ADDED, (event) => binder.bind(event.target));
  const onReady = () => {
    binder.bind(doc);
    if (options.autoStart !== false) {
      client.start();
    }
  };
  if (doc.readyState === 'loading') {
    doc.addEventListener('DOMContentLoaded', onReady, { once: true });
  } else {
    timers.setTimeout(onReady, 0);
  }
  // One listener each for the whole life of the page (upstream added a
  // beforeunload listener per connection). pagehide also covers pages put
  // in the back/forward cache; pageshow reconnects them when restored.
  win.addEventListener('pagehide', () => client.stop());
  win.addEventListener('pageshow', (event) => {
    if (event.persisted) {
      client.resume();
    }
  });

  win.DFSignals = client;
  return client;
}

export {
  DFSignalsClient,
  DEFAULT_CONFIG,
  HEARTBEAT_MESSAGE,
  UNKNOWN_WINDOW_SIGNAL,
  UNKNOWN_WINDOW_CODE,
  RECOVERY_FAILED_SIGNAL,
  Positions,
  parsePosition,
  parameterBudget,
  withQueryParameter,
  RECOVER_PARAM,
  builtinSignals,
  insertContent,
  DOM_CONTENT_ADDED,
  createBinder,
  defaultEventName,
  shouldPrevent,
  serializeForm,
  setFormFieldValue,
  fieldValue,
  parseCookies,
  getCookie,
  decodeCookieValue,
  backoffDelay,
  BoundedIdSet,
};
