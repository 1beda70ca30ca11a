// `data-df-signal` binding.
//
// An element carries a JSON list of `{name, on, opts, form, value, prevent}`
// (a single object is accepted too). For each entry a listener of event `on`
// calls signal `name` with a fresh copy of `opts`, plus:
//   form  -> opts[form]  = serializeForm(the element, or its form)
//   value -> opts[value] = fieldValue(the element)
// Default event: submit for FORM; change for INPUT (except reset/submit/
// button), TEXTAREA and SELECT; click otherwise.
// preventDefault(): when prevent === true, or when prevent is null/absent and
// the event is not "change"; never when prevent === false.
//
// Binding runs on the whole document at DOMContentLoaded and on the target of
// every DOMContentAdded event, the target itself included (upstream only
// looked at its descendants). An element is bound once per attribute value:
// binding again is a no-op, and a changed attribute replaces the listeners.

import { fieldValue, serializeForm } from './forms.js';

export const ATTRIBUTE = 'data-df-signal';
const BUTTON_TYPES = new Set(['reset', 'submit', 'button']);

/** Default DOM event for an element without `on`. */
export function defaultEventName(elt) {
  const tag = elt.tagName;
  if (tag === 'FORM') {
    return 'submit';
  }
  if (tag === 'INPUT') {
    return BUTTON_TYPES.has(String(elt.type).toLowerCase()) ? 'click' : 'change';
  }
  if (tag === 'TEXTAREA' || tag === 'SELECT') {
    return 'change';
  }
  return 'click';
}

/** Whether the listener must call preventDefault(). */
export function shouldPrevent(prevent, eventName) {
  if (prevent === true) {
    return true;
  }
  if (prevent === null || prevent === undefined) {
    return eventName !== 'change';
  }
  return false;
}

/**
 * Parse the attribute. Returns a list of valid specs; logs and skips what is
 * not usable.
 */
export function parseSpecs(text, logger) {
  let specs;
  try {
    specs = JSON.parse(text);
  } catch (err) {
    logger.error(`[df_websockets] invalid JSON in ${ATTRIBUTE}: ${text}`, err);
    return [];
  }
  if (!Array.isArray(specs)) {
    specs = [specs];
  }
  return specs.filter((spec) => {
    const ok = spec && typeof spec === 'object' && typeof spec.name === 'string' && spec.name;
    if (!ok) {
      logger.error(`[df_websockets] ${ATTRIBUTE} entry without a signal name: ${JSON.stringify(spec)}`);
    }
    return ok;
  });
}

/**
 * Create a binder for window `win`.
 *
 * @param {Window} win
 * @param {object} deps
 * @param {(name: string, opts: object) => any} deps.call  sends the signal
 * @param {(fn: () => void) => void} deps.defer  runs fn after the other
 *   listeners of the same event (so an editor that copies its content into a
 *   textarea on submit is read after it did)
 * @param {Console} deps.logger
 * @returns {{bind: (root: Node) => number}}
 */
export function createBinder(win, { call, defer, logger }) {
  const bound = new WeakMap(); // element -> {text, listeners: [[event, fn]]}

  function listenerFor(elt, spec, eventName) {
    return (event) => {
      if (shouldPrevent(spec.prevent, eventName)) {
        event.preventDefault();
      }
      defer(() => {
        const opts = spec.opts && typeof spec.opts === 'object' ? { ...spec.opts } : {};
        if (spec.form) {
          const form = elt.tagName === 'FORM' ? elt : elt.form || elt.closest('form');
          opts[spec.form] = serializeForm(form);
        }
        if (spec.value) {
          opts[spec.value] = fieldValue(elt);
        }
        call(spec.name, opts);
      });
    };
  }

  function bindElement(elt) {
    const text = elt.getAttribute(ATTRIBUTE);
    const previous = bound.get(elt);
    if (previous) {
      if (previous.text === text) {
        return false;
      }
      for (const [eventName, fn] of previous.listeners) {
        elt.removeEventListener(eventName, fn);
      }
    }
    const listeners = [];
    for (const spec of parseSpecs(text, logger)) {
      const eventName = spec.on || defaultEventName(elt);
      const fn = listenerFor(elt, spec, eventName);
      elt.addEventListener(eventName, fn);
      listeners.push([eventName, fn]);
    }
    bound.set(elt, { text, listeners });
    return true;
  }

  /** Bind `root` (when it is an element) and every descendant. */
  function bind(root) {
    if (!root) {
      return 0;
    }
    let count = 0;
    if (root.nodeType === 1 && root.hasAttribute(ATTRIBUTE)) {
      count += bindElement(root) ? 1 : 0;
    }
    if (typeof root.querySelectorAll === 'function') {
      root.querySelectorAll(`[${ATTRIBUTE}]`).forEach((elt) => {
        count += bindElement(elt) ? 1 : 0;
      });
    }
    return count;
  }

  return { bind };
}
