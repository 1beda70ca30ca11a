import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinSignals } from '../src/html.js';
import { makeWindow } from './helpers.js';

const PAGE = `<!DOCTYPE html><body>
<div id="root"><p class="t" id="p1">one</p><p class="t" id="p2">two</p></div>
<input id="i1" disabled><button id="b1">b</button>
</body>`;

function page(html = PAGE) {
  const { window, document } = makeWindow(html);
  const added = [];
  document.addEventListener('DOMContentAdded', (e) => added.push(e.target.outerHTML || e.target.nodeName));
  return { window, document, signals: builtinSignals(window), added };
}

const html = (doc) => doc.getElementById('root').innerHTML;

test('html.after inserts after each match and announces inserted elements', () => {
  const { document, signals, added } = page();
  signals['html.after']({ selector: '.t', content: '<b>x</b><i>y</i>' });
  assert.equal(html(document), '<p class="t" id="p1">one</p><b>x</b><i>y</i><p class="t" id="p2">two</p><b>x</b><i>y</i>');
  assert.deepEqual(added, ['<b>x</b>', '<i>y</i>', '<b>x</b>', '<i>y</i>']);
});

test('html.before inserts before each match', () => {
  const { document, signals, added } = page();
  signals['html.before']({ selector: '#p2', content: '<span>s</span>' });
  assert.equal(html(document), '<p class="t" id="p1">one</p><span>s</span><p class="t" id="p2">two</p>');
  assert.deepEqual(added, ['<span>s</span>']);
});

test('html.append and html.prepend insert inside, at the end and at the start', () => {
  const { document, signals, added } = page();
  signals['html.append']({ selector: '#p1', content: '<em>end</em>' });
  signals['html.prepend']({ selector: '#p1', content: 'text<em>start</em>' });
  assert.equal(document.getElementById('p1').innerHTML, 'text<em>start</em>one<em>end</em>');
  // text nodes are inserted but only elements receive the event
  assert.deepEqual(added, ['<em>end</em>', '<em>start</em>']);
});

test('html.content replaces the children; html.replace_with the element', () => {
  const { document, signals, added } = page();
  signals['html.content']({ selector: '#p1', content: '<u>new</u>' });
  assert.equal(document.getElementById('p1').innerHTML, '<u>new</u>');
  signals['html.replace_with']({ selector: '#p2', content: '<h2 id="h">title</h2><hr>' });
  assert.equal(html(document), '<p class="t" id="p1"><u>new</u></p><h2 id="h">title</h2><hr>');
  assert.deepEqual(added, ['<u>new</u>', '<h2 id="h">title</h2>', '<hr>']);
});

test('DOMContentAdded bubbles to the document', () => {
  const { document, signals } = page();
  const seen = [];
  document.getElementById('root').addEventListener('DOMContentAdded', (e) => seen.push(e.target.id));
  signals['html.append']({ selector: '#root', content: '<p id="n"></p>' });
  assert.deepEqual(seen, ['n']);
});

test('inserted content accepts a DOM node (cloned for each target)', () => {
  const { document, signals } = page();
  const node = document.createElement('mark');
  node.textContent = 'm';
  signals['html.append']({ selector: '.t', content: node });
  assert.equal(document.querySelectorAll('mark').length, 2);
});

test('html.empty and html.remove', () => {
  const { document, signals } = page();
  signals['html.empty']({ selector: '#p1' });
  assert.equal(document.getElementById('p1').childNodes.length, 0);
  signals['html.remove']({ selector: '.t' });
  assert.equal(html(document), '');
});

test('html.add_class and html.remove_class (several classes at once)', () => {
  const { document, signals } = page();
  signals['html.add_class']({ selector: '.t', class_name: 'a b' });
  assert.equal(document.getElementById('p2').className, 't a b');
  signals['html.remove_class']({ selector: '.t', class_name: 'a' });
  assert.equal(document.getElementById('p1').className, 't b');
});

test('html.add_attribute, html.remove_attr and html.boolean_attribute', () => {
  const { document, signals } = page();
  signals['html.add_attribute']({ selector: '.t', attr_name: 'data-x', attr_value: 42 });
  assert.equal(document.getElementById('p1').getAttribute('data-x'), '42');
  signals['html.remove_attr']({ selector: '#p1', attr_name: 'data-x' });
  assert.equal(document.getElementById('p1').hasAttribute('data-x'), false);
  assert.equal(document.getElementById('p2').getAttribute('data-x'), '42');
  signals['html.boolean_attribute']({ selector: '#b1', name: 'disabled', value: true });
  assert.equal(document.getElementById('b1').getAttribute('disabled'), 'disabled');
  assert.equal(document.getElementById('b1').disabled, true);
  signals['html.boolean_attribute']({ selector: '#i1', name: 'disabled', value: false });
  assert.equal(document.getElementById('i1').hasAttribute('disabled'), false);
  signals['html.boolean_attribute']({ selector: '#i1', name: 'readonly', value: 0 });
  assert.equal(document.getElementById('i1').hasAttribute('readonly'), false);
});

test('html.text sets text, never markup', () => {
  const { document, signals, added } = page();
  signals['html.text']({ selector: '#p1', content: '<b>not bold</b>' });
  assert.equal(document.getElementById('p1').textContent, '<b>not bold</b>');
  assert.equal(document.getElementById('p1').children.length, 0);
  signals['html.text']({ selector: '#p2' });
  assert.equal(document.getElementById('p2').textContent, '');
  assert.deepEqual(added, []);
});

test('html.focus focuses the first match', () => {
  const { document, signals } = page('<body><input id="a" class="f"><input id="b" class="f"></body>');
  signals['html.focus']({ selector: '.f' });
  assert.equal(document.activeElement.id, 'a');
  signals['html.focus']({ selector: '.missing' }); // no error
});

test('html.download_file clicks a temporary link with the file name', () => {
  const { window, document, signals } = page();
  const clicks = [];
  window.HTMLAnchorElement.prototype.click = function click() {
    clicks.push({ href: this.href, download: this.download, attached: this.isConnected });
  };
  signals['html.download_file']({ url: 'http://example.com:8000/f.zip', filename: 'f.zip' });
  signals['html.download_file']({ url: '/other' });
  assert.deepEqual(clicks, [
    { href: 'http://example.com:8000/f.zip', download: 'f.zip', attached: true },
    { href: 'http://example.com:8000/other', download: 'unknown', attached: true },
  ]);
  assert.equal(document.querySelectorAll('a').length, 0); // removed afterwards
});

test('html.forms.set sets every kind of field', () => {
  const { document, signals } = page(`<body>
  <form class="f" id="f1">
    <input name="title" value="old">
    <textarea name="body">old</textarea>
    <input type="checkbox" name="single" value="yes">
    <input type="checkbox" name="single2" value="v">
    <input type="radio" name="color" value="red" checked><input type="radio" name="color" value="blue">
    <input type="checkbox" name="tags" value="a"><input type="checkbox" name="tags" value="b"><input type="checkbox" name="tags" value="c">
    <input type="checkbox" name="all" value="1"><input type="checkbox" name="all" value="2">
    <select name="one"><option value="1">1</option><option value="2">2</option></select>
    <select name="many" multiple><option value="x">x</option><option value="y">y</option><option value="z">z</option></select>
  </form>
  <form class="f" id="f2"><input name="title"></form></body>`);
  signals['html.forms.set']({
    selector: '.f',
    values: [
      { name: 'title', value: 'new' },
      { name: 'body', value: 'text' },
      { name: 'single', value: true },
      { name: 'single2', value: 'changed' },
      { name: 'color', value: 'blue' },
      { name: 'tags', value: ['a', 'c'] },
      { name: 'all', value: true },
      { name: 'one', value: 2 },
      { name: 'many', value: ['x', 'z'] },
      { name: 'unknown', value: 'ignored' },
    ],
  });
  const f = document.getElementById('f1').elements;
  assert.equal(f.title.value, 'new');
  assert.equal(document.getElementById('f2').elements.title.value, 'new');
  assert.equal(f.body.value, 'text');
  assert.equal(f.single.checked, true);
  assert.equal(f.single2.checked, false);
  assert.equal(f.single2.value, 'changed');
  assert.deepEqual(Array.from(f.color).map((r) => r.checked), [false, true]);
  assert.deepEqual(Array.from(f.tags).map((r) => r.checked), [true, false, true]);
  assert.deepEqual(Array.from(f.all).map((r) => r.checked), [true, true]);
  assert.equal(f.one.value, '2');
  assert.deepEqual(Array.from(f.many.selectedOptions).map((o) => o.value), ['x', 'z']);
  signals['html.forms.set']({ selector: '#f1', values: [{ name: 'single', value: false }, { name: 'all', value: false }] });
  assert.equal(f.single.checked, false);
  assert.deepEqual(Array.from(f.all).map((r) => r.checked), [false, false]);
});
