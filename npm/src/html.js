// Built-in DOM signals (`html.*`). Each one acts on every element matching
// `opts.selector` (html.focus: the first one only). Signals that insert HTML
// dispatch a bubbling "DOMContentAdded" event on every inserted element so
// that `data-df-signal` attributes inside it get bound (see binding.js) and
// page scripts can initialise widgets.

import { setFormsValues } from './forms.js';

export const DOM_CONTENT_ADDED = 'DOMContentAdded';

/**
 * Parse `content` into a fragment owned by `doc`. A Node is cloned (deeply)
 * so that it can be inserted at several places; anything else is read as an
 * HTML string (null/undefined give nothing).
 */
function toFragment(doc, content) {
  if (content && typeof content === 'object' && typeof content.nodeType === 'number') {
    const fragment = doc.createDocumentFragment();
    fragment.appendChild(content.cloneNode(true));
    return fragment;
  }
  const template = doc.createElement('template');
  template.innerHTML = content === null || content === undefined ? '' : String(content);
  return template.content;
}

function announce(win, nodes) {
  for (const node of nodes) {
    if (node.nodeType === 1 && node.isConnected) {
      node.dispatchEvent(new win.Event(DOM_CONTENT_ADDED, { bubbles: true }));
    }
  }
}

/**
 * Insert `content` relative to every element matching `selector`.
 * where: 'beforebegin' | 'afterbegin' | 'beforeend' | 'afterend' |
 * 'replace' | 'inner'. Returns the inserted top-level nodes.
 */
export function insertContent(win, selector, content, where) {
  const doc = win.document;
  const inserted = [];
  doc.querySelectorAll(selector).forEach((elt) => {
    const fragment = toFragment(doc, content);
    const nodes = Array.from(fragment.childNodes);
    switch (where) {
      case 'beforebegin':
        if (!elt.parentNode) return;
        elt.parentNode.insertBefore(fragment, elt);
        break;
      case 'afterend':
        if (!elt.parentNode) return;
        elt.parentNode.insertBefore(fragment, elt.nextSibling);
        break;
      case 'afterbegin':
        elt.insertBefore(fragment, elt.firstChild);
        break;
      case 'beforeend':
        elt.appendChild(fragment);
        break;
      case 'inner':
        elt.replaceChildren(fragment);
        break;
      case 'replace':
        if (!elt.parentNode) return;
        elt.parentNode.replaceChild(fragment, elt);
        break;
      default:
        throw new Error(`unknown insertion point ${where}`);
    }
    inserted.push(...nodes);
  });
  announce(win, inserted);
  return inserted;
}

function eachMatch(win, selector, fn) {
  win.document.querySelectorAll(selector).forEach(fn);
}

/**
 * Build the table of built-in signal handlers for window `win`.
 * @returns {Record<string, (opts: object) => void>}
 */
export function builtinSignals(win) {
  const doc = win.document;
  return {
    'html.after': (opts) => insertContent(win, opts.selector, opts.content, 'afterend'),
    'html.append': (opts) => insertContent(win, opts.selector, opts.content, 'beforeend'),
    'html.prepend': (opts) => insertContent(win, opts.selector, opts.content, 'afterbegin'),
    'html.before': (opts) => insertContent(win, opts.selector, opts.content, 'beforebegin'),
    'html.content': (opts) => insertContent(win, opts.selector, opts.content, 'inner'),
    'html.replace_with': (opts) => insertContent(win, opts.selector, opts.content, 'replace'),
    'html.empty': (opts) => eachMatch(win, opts.selector, (elt) => elt.replaceChildren()),
    'html.remove': (opts) => eachMatch(win, opts.selector, (elt) => elt.remove()),
    'html.add_class': (opts) => eachMatch(win, opts.selector, (elt) => {
      elt.classList.add(...String(opts.class_name).split(/\s+/).filter(Boolean));
    }),
    'html.remove_class': (opts) => eachMatch(win, opts.selector, (elt) => {
      elt.classList.remove(...String(opts.class_name).split(/\s+/).filter(Boolean));
    }),
    'html.remove_attr': (opts) => eachMatch(win, opts.selector, (elt) => {
      elt.removeAttribute(opts.attr_name);
    }),
    'html.add_attribute': (opts) => eachMatch(win, opts.selector, (elt) => {
      elt.setAttribute(opts.attr_name, opts.attr_value === undefined ? '' : String(opts.attr_value));
    }),
    'html.boolean_attribute': (opts) => eachMatch(win, opts.selector, (elt) => {
      if (opts.value) {
        elt.setAttribute(opts.name, opts.name);
      } else {
        elt.removeAttribute(opts.name);
      }
    }),
    'html.text': (opts) => eachMatch(win, opts.selector, (elt) => {
      elt.textContent = opts.content === null || opts.content === undefined ? '' : String(opts.content);
    }),
    'html.download_file': (opts) => {
      const link = doc.createElement('a');
      link.href = opts.url;
      link.target = '_blank';
      link.download = opts.filename || 'unknown';
      link.style.display = 'none';
      (doc.body || doc.documentElement).appendChild(link);
      // A blob: URL belongs to the page code that created it: we never revoke
      // it (upstream revoked it synchronously, which can cancel the download).
      try {
        link.click();
      } finally {
        link.remove();
      }
    },
    'html.focus': (opts) => {
      const elt = doc.querySelector(opts.selector);
      if (elt && typeof elt.focus === 'function') {
        elt.focus();
      }
    },
    'html.forms.set': (opts) => setFormsValues(doc, opts),
  };
}
