import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBinder, defaultEventName, shouldPrevent } from '../src/binding.js';
import { builtinSignals } from '../src/html.js';
import { makeWindow, FakeClock, recordingLogger } from './helpers.js';

function setup(html) {
  const { window, document } = makeWindow(`<!DOCTYPE html><body>${html}</body>`);
  const clock = new FakeClock();
  const calls = [];
  const logger = recordingLogger();
  const binder = createBinder(window, {
    call: (name, opts) => calls.push([name, opts]),
    defer: (fn) => clock.setTimeout(fn, 0),
    logger,
  });
  document.addEventListener('DOMContentAdded', (e) => binder.bind(e.target));
  binder.bind(document);
  const fire = (elt, type) => {
    const Ctor = type === 'click' ? window.MouseEvent : window.Event;
    const event = new Ctor(type, { bubbles: true, cancelable: true });
    elt.dispatchEvent(event);
    clock.tick(0);
    return event.defaultPrevented;
  };
  return { window, document, calls, logger, binder, fire, clock };
}

const attr = (specs) => `data-df-signal='${JSON.stringify(specs)}'`;

test('default events: submit for FORM, change for fields, click otherwise', () => {
  const { document } = makeWindow(`<body><form id="f"></form><input id="text"><input type="checkbox" id="cb">
    <input type="submit" id="sub"><input type="reset" id="res"><input type="button" id="btn">
    <textarea id="ta"></textarea><select id="sel"></select><button id="b"></button><a id="a"></a><div id="d"></div></body>`);
  const expected = {
    f: 'submit', text: 'change', cb: 'change', sub: 'click', res: 'click', btn: 'click',
    ta: 'change', sel: 'change', b: 'click', a: 'click', d: 'click',
  };
  for (const [id, eventName] of Object.entries(expected)) {
    assert.equal(defaultEventName(document.getElementById(id)), eventName, id);
  }
});

test('prevent rules', () => {
  assert.equal(shouldPrevent(true, 'change'), true);
  assert.equal(shouldPrevent(true, 'click'), true);
  assert.equal(shouldPrevent(false, 'click'), false);
  assert.equal(shouldPrevent(false, 'submit'), false);
  assert.equal(shouldPrevent(null, 'click'), true);
  assert.equal(shouldPrevent(undefined, 'submit'), true);
  assert.equal(shouldPrevent(null, 'change'), false);
  assert.equal(shouldPrevent(undefined, 'change'), false);
});

test('a form submit sends the serialised form and is prevented by default', () => {
  const { document, calls, fire } = setup(`<form id="f" ${attr([{ name: 'sig.form', form: 'form_data', opts: { id: 42 } }])}>
    <input name="title" value="df_websockets"></form>`);
  const prevented = fire(document.getElementById('f'), 'submit');
  assert.equal(prevented, true);
  assert.deepEqual(calls, [['sig.form', { id: 42, form_data: [{ name: 'title', value: 'df_websockets' }] }]]);
});

test('the change of a field sends its value and is not prevented', () => {
  const { document, calls, fire } = setup(`<form><input name="title" id="t" ${attr([{ name: 'sig.v', value: 'title', opts: { id: 42 } }])}></form>`);
  const input = document.getElementById('t');
  input.value = 'new title value';
  assert.equal(fire(input, 'change'), false);
  input.value = 'second';
  fire(input, 'change');
  // opts are copied per event: the first call kept its value
  assert.deepEqual(calls, [['sig.v', { id: 42, title: 'new title value' }], ['sig.v', { id: 42, title: 'second' }]]);
});

test('form option on a field serialises its form; value of checkbox and select', () => {
  const { document, calls, fire } = setup(`<form><input name="a" value="1">
    <input type="checkbox" id="cb" ${attr({ name: 'sig.cb', value: 'on', form: 'data' })}>
    <select id="s" multiple ${attr([{ name: 'sig.s', value: 'vals' }])}><option value="x" selected>x</option><option value="y" selected>y</option></select></form>`);
  const cb = document.getElementById('cb');
  cb.checked = true;
  fire(cb, 'change');
  fire(document.getElementById('s'), 'change');
  assert.deepEqual(calls, [
    ['sig.cb', { on: true, data: [{ name: 'a', value: '1' }] }],
    ['sig.s', { vals: ['x', 'y'] }],
  ]);
});

test('click default with prevent, explicit on and prevent overrides', () => {
  const { document, calls, fire } = setup(`
    <a id="a" href="#x" ${attr([{ name: 'sig.a' }])}>a</a>
    <a id="keep" href="#y" ${attr([{ name: 'sig.keep', prevent: false }])}>b</a>
    <input id="i" ${attr([{ name: 'sig.input', on: 'input', prevent: true }])}>
    <div id="d" ${attr([{ name: 'one', on: 'click' }, { name: 'two', on: 'dblclick', prevent: false }])}></div>`);
  assert.equal(fire(document.getElementById('a'), 'click'), true);
  assert.equal(fire(document.getElementById('keep'), 'click'), false);
  assert.equal(fire(document.getElementById('i'), 'change'), false); // not bound to change
  assert.equal(fire(document.getElementById('i'), 'input'), true);
  fire(document.getElementById('d'), 'click');
  assert.equal(fire(document.getElementById('d'), 'dblclick'), false);
  assert.deepEqual(calls.map((c) => c[0]), ['sig.a', 'sig.keep', 'sig.input', 'one', 'two']);
  assert.deepEqual(calls[0][1], {});
});

test('the values are read after the other listeners of the event ran', () => {
  const { document, calls, window, clock } = setup(`<form id="f" ${attr([{ name: 's', form: 'f' }])}><textarea name="t"></textarea></form>`);
  const form = document.getElementById('f');
  // an editor copying its content on submit, registered after us
  form.addEventListener('submit', () => { form.elements.t.value = 'from editor'; });
  form.dispatchEvent(new window.Event('submit', { cancelable: true }));
  clock.tick(0);
  assert.deepEqual(calls, [['s', { f: [{ name: 't', value: 'from editor' }] }]]);
});

test('inserted content is bound, its root element included, and never twice', () => {
  const { window, document, calls, fire } = setup('<div id="zone"></div>');
  const signals = builtinSignals(window);
  signals['html.content']({
    selector: '#zone',
    content: `<button id="root" ${attr([{ name: 'root.click' }])}><span id="inner" ${attr([{ name: 'inner.click', prevent: false }])}>x</span></button>`,
  });
  fire(document.getElementById('inner'), 'click');
  assert.deepEqual(calls.map((c) => c[0]), ['inner.click', 'root.click']);
  // announcing the same content again (or the whole document) does not double-bind
  document.getElementById('root').dispatchEvent(new window.Event('DOMContentAdded', { bubbles: true }));
  calls.length = 0;
  fire(document.getElementById('root'), 'click');
  assert.deepEqual(calls.map((c) => c[0]), ['root.click']);
});

test('a changed attribute replaces the previous listeners', () => {
  const { document, binder, calls, fire } = setup(`<div id="d" ${attr([{ name: 'old' }])}></div>`);
  const d = document.getElementById('d');
  d.setAttribute('data-df-signal', JSON.stringify([{ name: 'new' }]));
  assert.equal(binder.bind(d), 1);
  fire(d, 'click');
  assert.deepEqual(calls.map((c) => c[0]), ['new']);
});

test('invalid specs are logged and skipped', () => {
  const { logger, calls, document, fire } = setup(`<div id="bad" data-df-signal="{nope"></div>
    <div id="noname" ${attr([{ on: 'click' }, { name: 'ok' }])}></div>`);
  assert.equal(logger.matching('error', /invalid JSON in data-df-signal/).length, 1);
  assert.equal(logger.matching('error', /without a signal name/).length, 1);
  fire(document.getElementById('bad'), 'click');
  fire(document.getElementById('noname'), 'click');
  assert.deepEqual(calls.map((c) => c[0]), ['ok']);
});
