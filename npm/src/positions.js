// Recovery positions: for each topic group the window received a message
// of, the position ("<epoch>-<offset>") of the last one processed, and the
// `dfws_recover` query parameter that asks the server to replay what the
// window missed while it was disconnected (docs/recovery.md).
//
// Rules (docs/recovery.md, "Browser client"):
// - a position of a new epoch replaces the old one (the history was
//   created again: the old offsets mean nothing any more);
// - in the same epoch the higher offset wins (two triggers racing on one
//   topic may reach the window out of offset order);
// - after `df_websockets.recovery_failed` the positions of the listed
//   groups are dropped: they cannot be recovered from, and the page reloads
//   its data itself.
// The parameter is bounded (the server reads at most 64 groups and 8 KiB):
// the positions updated longest ago are left out first.

export const RECOVER_PARAM = 'dfws_recover';
export const MAX_GROUPS = 64;
export const MAX_PARAM_BYTES = 8192;
// dfws-asgi's --limit-request-line (8190, as daphne/uvicorn/gunicorn) and
// nginx's large_client_header_buffers (8 KiB) bound the whole request line
// "GET <target> HTTP/1.1": the parameter must leave room for the rest of it
export const MAX_REQUEST_LINE = 8190;

// epoch: 8 lowercase hex characters (accept up to 32: the client only
// compares them); offset: a positive integer that fits a double exactly.
const POSITION_RE = /^([0-9a-f]{1,32})-([1-9][0-9]{0,14})$/;
// sha256_hex(topic) upstream; any short token the server chooses is kept
const GROUP_RE = /^[A-Za-z0-9_.:-]{1,100}$/;

/**
 * Split a position string into {epoch, offset}, or null when malformed.
 * @param {unknown} position
 */
export function parsePosition(position) {
  if (typeof position !== 'string') {
    return null;
  }
  const match = POSITION_RE.exec(position);
  if (!match) {
    return null;
  }
  return { epoch: match[1], offset: Number(match[2]) };
}

export function isGroupName(group) {
  return typeof group === 'string' && GROUP_RE.test(group);
}

export class Positions {
  /**
   * @param {object} [limits]
   * @param {number} [limits.maxGroups] positions kept (oldest-updated dropped beyond)
   * @param {number} [limits.maxBytes] length of `dfws_recover=<value>` in the URL, at most
   */
  constructor({ maxGroups = MAX_GROUPS, maxBytes = MAX_PARAM_BYTES } = {}) {
    this.maxGroups = Math.max(1, Math.floor(Number(maxGroups) || MAX_GROUPS));
    this.maxBytes = Math.max(64, Math.floor(Number(maxBytes) || MAX_PARAM_BYTES));
    // group -> {epoch, offset, position}; Map order = update order (oldest first)
    this._byGroup = new Map();
  }

  get size() {
    return this._byGroup.size;
  }

  /** The position string of `group`, or undefined. */
  get(group) {
    const entry = this._byGroup.get(group);
    return entry ? entry.position : undefined;
  }

  /**
   * Record that the message at `position` of `group` was processed.
   * Returns true when the stored position changed. Malformed input is
   * ignored (false): a message without valid fields is still dispatched.
   */
  update(group, position) {
    if (!isGroupName(group)) {
      return false;
    }
    const parsed = parsePosition(position);
    if (!parsed) {
      return false;
    }
    const current = this._byGroup.get(group);
    if (current && current.epoch === parsed.epoch && current.offset >= parsed.offset) {
      return false; // same epoch, not newer: an older copy arriving late
    }
    this._byGroup.delete(group); // re-inserted last: most recently updated
    this._byGroup.set(group, { ...parsed, position });
    while (this._byGroup.size > this.maxGroups) {
      this._byGroup.delete(this._byGroup.keys().next().value);
    }
    return true;
  }

  /** Forget the positions of `groups` (an array of names); returns how many were known. */
  drop(groups) {
    let dropped = 0;
    if (Array.isArray(groups)) {
      for (const group of groups) {
        if (this._byGroup.delete(group)) {
          dropped += 1;
        }
      }
    }
    return dropped;
  }

  clear() {
    this._byGroup.clear();
  }

  /** {group: position} of every known group, oldest-updated first. */
  toObject() {
    const out = {};
    for (const [group, entry] of this._byGroup) {
      out[group] = entry.position;
    }
    return out;
  }

  /**
   * The `dfws_recover=<URL-encoded JSON>` query parameter, or "" when there
   * is no position. When it would be longer than maxBytes (or `budget`,
   * when smaller), the positions updated longest ago are left out (they
   * stay stored: a later, smaller request may carry them).
   */
  queryParameter(budget = Infinity) {
    const maxBytes = Math.min(this.maxBytes, budget);
    const entries = [...this._byGroup.entries()];
    let start = 0;
    while (start < entries.length) {
      const object = {};
      for (let i = start; i < entries.length; i += 1) {
        object[entries[i][0]] = entries[i][1].position;
      }
      const param = `${RECOVER_PARAM}=${encodeURIComponent(JSON.stringify(object))}`;
      if (param.length <= maxBytes) {
        return param;
      }
      // each left-out entry shortens it by ~100 bytes: skip as many at once
      // as the excess needs, at least one
      const excess = param.length - maxBytes;
      start += Math.max(1, Math.floor(excess / 200));
    }
    return '';
  }
}

/**
 * How many bytes a query parameter added to `url` may take so that the
 * request line "GET <path?query> HTTP/1.1" stays within MAX_REQUEST_LINE.
 */
export function parameterBudget(url) {
  const noFragment = url.split('#')[0];
  const schemeEnd = noFragment.indexOf('//');
  const pathAt = schemeEnd >= 0 ? noFragment.indexOf('/', schemeEnd + 2) : 0;
  const target = pathAt >= 0 ? noFragment.slice(pathAt) : '/';
  // "GET " + target + "&" + param + " HTTP/1.1"
  return MAX_REQUEST_LINE - 'GET  HTTP/1.1'.length - target.length - 1;
}

/**
 * `url` with `param` ("name=value") added to its query string, before any
 * fragment; an existing `dfws_recover` parameter is replaced.
 */
export function withQueryParameter(url, param) {
  if (!param) {
    return url;
  }
  const hashAt = url.indexOf('#');
  const base = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const fragment = hashAt >= 0 ? url.slice(hashAt) : '';
  const queryAt = base.indexOf('?');
  if (queryAt < 0) {
    return `${base}?${param}${fragment}`;
  }
  const path = base.slice(0, queryAt);
  const name = param.slice(0, param.indexOf('=') + 1);
  const kept = base.slice(queryAt + 1).split('&')
    .filter((part) => part !== '' && !part.startsWith(name) && part !== name.slice(0, -1));
  kept.push(param);
  return `${path}?${kept.join('&')}${fragment}`;
}
