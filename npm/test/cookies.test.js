import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCookies, getCookie, decodeCookieValue } from '../src/cookies.js';

test('parseCookies splits one cookie at a time and keeps the first occurrence', () => {
  const cookies = parseCookies('a=1; b=two;c=3 ; a=4; noequals; =x');
  assert.deepEqual([...cookies.entries()], [['a', '1'], ['b', 'two'], ['c', '3']]);
  assert.equal(parseCookies('').size, 0);
  assert.equal(parseCookies(undefined).size, 0);
});

test('the dfwsurl written by Django (quote_plus) is decoded', () => {
  // quote_plus("ws://example.com:8000/ws/")
  const cookie = 'csrftoken=abc; dfwsurl=ws%3A%2F%2Fexample.com%3A8000%2Fws%2F; dfwskey=k1';
  assert.equal(getCookie(cookie, 'dfwsurl'), 'ws://example.com:8000/ws/');
  assert.equal(getCookie(cookie, 'dfwskey'), 'k1');
});

test('"+" means a space and %2B a plus sign', () => {
  assert.equal(decodeCookieValue('a+b%2Bc'), 'a b+c');
  assert.equal(getCookie('x=hello+world', 'x'), 'hello world');
});

test('a malformed unrelated cookie does not hide the others', () => {
  const cookie = 'broken=%E0%A4%A; other=%ZZ; dfwsurl=wss%3A%2F%2Fh.example%2Fws%2F; tail=%';
  assert.equal(getCookie(cookie, 'dfwsurl'), 'wss://h.example/ws/');
  // the malformed ones are returned raw instead of throwing
  assert.equal(getCookie(cookie, 'broken'), '%E0%A4%A');
  assert.equal(getCookie(cookie, 'other'), '%ZZ');
  assert.equal(getCookie(cookie, 'tail'), '%');
});

test('quoted values and twice-encoded URLs are decoded', () => {
  assert.equal(decodeCookieValue('"ws%3A%2F%2Fh%2Fws%2F"'), 'ws://h/ws/');
  // quote_plus applied twice
  assert.equal(decodeCookieValue('ws%253A%252F%252Fh%252Fws%252F'), 'ws://h/ws/');
  // once decoded into a URL, escapes inside the URL are kept
  assert.equal(decodeCookieValue('ws%3A%2F%2Fh%2Fws%2F%3Fa%3D%2520'), 'ws://h/ws/?a=%20');
});

test('a missing cookie gives an empty string', () => {
  assert.equal(getCookie('a=1', 'dfwsurl'), '');
  assert.equal(getCookie('dfwsurl=', 'dfwsurl'), '');
  assert.equal(getCookie('xdfwsurl=1', 'dfwsurl'), '');
});
