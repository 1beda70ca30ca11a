import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serializeForm, fieldValue } from '../src/forms.js';
import { makeWindow } from './helpers.js';

function withFiles(input, names) {
  Object.defineProperty(input, 'files', { value: names.map((name) => ({ name })), configurable: true });
}

test('serializeForm follows the documented rules', () => {
  const { document } = makeWindow(`<body><form id="f">
    <input name="title" value="df_websockets">
    <input value="no name">
    <input name="off" value="x" disabled>
    <input type="reset" name="r" value="r"><input type="submit" name="s" value="s"><input type="button" name="b" value="b">
    <button name="btn" value="v">button element</button>
    <input type="checkbox" name="cb" value="1" checked><input type="checkbox" name="cb" value="2"><input type="checkbox" name="cb" value="3" checked>
    <input type="radio" name="r1" value="a"><input type="radio" name="r1" value="b" checked>
    <input type="checkbox" name="unchecked" value="u">
    <select name="one"><option value="1">1</option><option value="2" selected>2</option></select>
    <select name="many" multiple><option value="x" selected>x</option><option value="y">y</option><option value="z" selected>z</option></select>
    <textarea name="body">hello
world</textarea>
    <input type="file" name="upload">
    <input type="hidden" name="h" value="hidden">
    <fieldset name="fs" disabled><input name="inside" value="i"></fieldset>
  </form></body>`);
  const form = document.getElementById('f');
  withFiles(form.elements.upload, ['a.txt', 'b.png']);
  assert.deepEqual(serializeForm(form), [
    { name: 'title', value: 'df_websockets' },
    { name: 'cb', value: '1' },
    { name: 'cb', value: '3' },
    { name: 'r1', value: 'b' },
    { name: 'one', value: '2' },
    { name: 'many', value: 'x' },
    { name: 'many', value: 'z' },
    { name: 'body', value: 'hello\nworld' },
    { name: 'upload', value: 'a.txt' },
    { name: 'upload', value: 'b.png' },
    { name: 'h', value: 'hidden' },
  ]);
});

test('serializeForm of nothing is an empty list', () => {
  assert.deepEqual(serializeForm(null), []);
  const { document } = makeWindow('<body><form id="f"></form></body>');
  assert.deepEqual(serializeForm(document.getElementById('f')), []);
});

test('fieldValue: files, multiple select, checkable state, value', () => {
  const { document } = makeWindow(`<body>
    <input type="file" id="file">
    <select id="many" multiple><option value="x" selected>x</option><option value="y" selected>y</option></select>
    <select id="one"><option value="1">1</option><option value="2" selected>2</option></select>
    <input type="checkbox" id="cb" checked><input type="radio" id="rd">
    <input id="txt" value="t"><textarea id="ta">a</textarea></body>`);
  withFiles(document.getElementById('file'), ['f.txt']);
  assert.deepEqual(fieldValue(document.getElementById('file')), ['f.txt']);
  assert.deepEqual(fieldValue(document.getElementById('many')), ['x', 'y']);
  assert.equal(fieldValue(document.getElementById('one')), '2');
  assert.equal(fieldValue(document.getElementById('cb')), true);
  assert.equal(fieldValue(document.getElementById('rd')), false);
  assert.equal(fieldValue(document.getElementById('txt')), 't');
  assert.equal(fieldValue(document.getElementById('ta')), 'a');
});
