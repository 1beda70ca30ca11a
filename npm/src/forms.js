// HTML form helpers: serialisation for signals, and the `html.forms.set`
// signal. Every check uses tagName/type rather than `instanceof`, so the code
// works with elements of any realm (iframes, jsdom in tests).

const SKIPPED_TYPES = new Set(['reset', 'submit', 'button']);

// A field inside a disabled fieldset is disabled too (the browser does not
// submit it), although its own `disabled` property is false.
function isDisabled(field) {
  if (field.disabled) {
    return true;
  }
  try {
    return typeof field.matches === 'function' && field.matches(':disabled');
  } catch (err) {
    return false;
  }
}

function isCheckable(field) {
  return field.type === 'checkbox' || field.type === 'radio';
}

/**
 * Serialise a form as a list of `{name, value}` (the format SerializedForm
 * reads on the server). Skips unnamed and disabled fields and reset/submit/
 * button inputs; one entry per selected file name and per selected option;
 * checkboxes and radios only when checked.
 *
 * @param {HTMLFormElement} form
 * @returns {Array<{name: string, value: string}>}
 */
export function serializeForm(form) {
  const serialized = [];
  if (!form || !form.elements) {
    return serialized;
  }
  for (const field of Array.from(form.elements)) {
    if (!field.name || isDisabled(field) || SKIPPED_TYPES.has(field.type)) {
      continue;
    }
    if (field.tagName === 'FIELDSET' || field.tagName === 'OBJECT' || field.tagName === 'OUTPUT') {
      continue;
    }
    if (field.type === 'file') {
      for (const file of Array.from(field.files || [])) {
        serialized.push({ name: field.name, value: file.name });
      }
    } else if (field.type === 'select-multiple') {
      for (const option of Array.from(field.options)) {
        if (option.selected) {
          serialized.push({ name: field.name, value: option.value });
        }
      }
    } else if (!isCheckable(field) || field.checked) {
      serialized.push({ name: field.name, value: field.value });
    }
  }
  return serialized;
}

/**
 * The value of one field, as sent by the `value` option of data-df-signal:
 * the list of file names, the list of selected values of a multiple select,
 * the checked state of a checkbox/radio, otherwise the value.
 *
 * @param {Element} field
 * @returns {string|boolean|string[]}
 */
export function fieldValue(field) {
  if (field.type === 'file') {
    return Array.from(field.files || []).map((file) => file.name);
  }
  if (field.type === 'select-multiple') {
    return Array.from(field.options).filter((o) => o.selected).map((o) => o.value);
  }
  if (isCheckable(field)) {
    return Boolean(field.checked);
  }
  return field.value;
}

function asString(value) {
  return value === null || value === undefined ? '' : String(value);
}

function setCheckable(input, value) {
  if (value === true || value === false) {
    input.checked = value;
  } else if (Array.isArray(value)) {
    input.checked = value.map(asString).includes(input.value);
  } else {
    input.checked = input.value === asString(value);
  }
}

function setSelect(select, value) {
  const wanted = Array.isArray(value) ? value.map(asString) : [asString(value)];
  for (const option of Array.from(select.options)) {
    option.selected = wanted.includes(option.value);
  }
}

/**
 * Set the field(s) called `name` of `form` to `value`:
 * - a group of several fields (radio/checkbox group): booleans check/uncheck
 *   every box, an array checks the boxes whose value is in it, a scalar checks
 *   the box with that value;
 * - one checkbox: true/false set its state, anything else its value;
 * - a select (single or multiple): selects the option(s) with the value(s);
 * - textarea and other inputs: the value.
 * Unknown names are ignored. Returns true when a field was found.
 */
export function setFormFieldValue(form, name, value) {
  const item = form.elements.namedItem(name);
  if (item === null || item === undefined) {
    return false;
  }
  if (item.tagName === undefined) {
    // RadioNodeList: several fields share that name
    Array.from(item).forEach((field, index) => {
      if (isCheckable(field)) {
        setCheckable(field, value);
      } else if (field.tagName === 'SELECT') {
        setSelect(field, value);
      } else {
        field.value = asString(Array.isArray(value) ? value[index] : value);
      }
    });
  } else if (item.tagName === 'SELECT') {
    setSelect(item, value);
  } else if (item.tagName === 'TEXTAREA') {
    item.value = asString(value);
  } else if (item.type === 'checkbox') {
    if (value === true || value === false) {
      item.checked = value;
    } else {
      item.value = asString(value);
    }
  } else if (item.type === 'radio') {
    setCheckable(item, value);
  } else if (item.type === 'file') {
    return false; // a script cannot set files
  } else {
    item.value = asString(value);
  }
  return true;
}

/**
 * The `html.forms.set` signal: `opts.selector` selects forms, `opts.values`
 * is a list of `{name, value}`.
 */
export function setFormsValues(doc, opts) {
  const values = Array.isArray(opts.values) ? opts.values : [];
  doc.querySelectorAll(opts.selector).forEach((form) => {
    if (!form.elements) {
      return;
    }
    for (const entry of values) {
      if (entry && typeof entry.name === 'string') {
        setFormFieldValue(form, entry.name, entry.value);
      }
    }
  });
}
