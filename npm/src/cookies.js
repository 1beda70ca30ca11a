// Cookie helpers for the df_websockets browser client.
//
// document.cookie is parsed one cookie at a time: a malformed value in an
// unrelated cookie (for instance "%E0%A4%A" set by some other script) must not
// hide ours. Upstream ran decodeURIComponent() on the whole string and lost
// every cookie as soon as one of them was malformed.

/**
 * Decode one cookie value written by Django.
 *
 * Django's middleware stores `dfwsurl` as `quote_plus(url)`, so `+` means a
 * space and `%XX` are percent escapes. Values may also be wrapped in double
 * quotes (RFC 6265 quoted string). When the decoded value still has no
 * "://" but holds percent escapes (a URL quoted twice, which upstream's client
 * tolerated by decoding twice), it is decoded once more, `+` left alone.
 * A malformed escape never throws: the value is kept as it was.
 *
 * @param {string} raw
 * @returns {string}
 */
export function decodeCookieValue(raw) {
  let value = String(raw).trim();
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    value = value.slice(1, -1);
  }
  value = safeDecode(value.replace(/\+/g, ' '), value);
  if (!value.includes('://') && /%[0-9A-Fa-f]{2}/.test(value)) {
    value = safeDecode(value, value);
  }
  return value;
}

function safeDecode(text, fallback) {
  try {
    return decodeURIComponent(text);
  } catch (err) {
    return fallback;
  }
}

/**
 * Parse a `document.cookie` string into a Map name -> raw value (first
 * occurrence wins, as browsers list the most specific path first).
 * Names are kept raw: we only look up plain ASCII names.
 *
 * @param {string} cookieString
 * @returns {Map<string, string>}
 */
export function parseCookies(cookieString) {
  const cookies = new Map();
  if (!cookieString) {
    return cookies;
  }
  for (const part of String(cookieString).split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      continue;
    }
    const name = part.slice(0, eq).trim();
    if (!name || cookies.has(name)) {
      continue;
    }
    cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

/**
 * Return the decoded value of cookie `name`, or "" when it is absent.
 *
 * @param {string} cookieString
 * @param {string} name
 * @returns {string}
 */
export function getCookie(cookieString, name) {
  const raw = parseCookies(cookieString).get(name);
  return raw === undefined ? '' : decodeCookieValue(raw);
}
