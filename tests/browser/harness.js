// Helpers of the browser end-to-end tests: start the demo project under the
// server being tested, launch Debian's chromium through playwright-core
// (never a downloaded browser), keep screenshots when a test fails.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');
// DFWS_DEMO_DIR: serve a copy of the demo (with its df_websockets) instead
export const DEMO_DIR = process.env.DFWS_DEMO_DIR ? path.resolve(process.env.DFWS_DEMO_DIR) : path.join(REPO_ROOT, 'demo');
export const ARTIFACTS_DIR = path.join(REPO_ROOT, 'tests', 'artifacts');
export const PYTHON = '/usr/bin/python3';
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function findExecutable(name, pathVar) {
  const candidates = name.includes('/') ? [path.resolve(name)] : pathVar.split(':').filter(Boolean).map((d) => path.join(d, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch (err) {
      // next
    }
  }
  return null;
}

/**
 * Start `$DFWS_SERVER_CMD` (default `dfws-asgi`; may hold extra words, e.g.
 * "daphne -v 1") on a free loopback port, serving demo.asgi:application from
 * demo/, with a private SQLite database and /usr/bin/python3 first on PATH.
 * Resolves to {url, stop(), log()} once /static/demo/demo.js answers 200.
 */
export async function startDemoServer() {
  const words = (process.env.DFWS_SERVER_CMD || 'dfws-asgi').trim().split(/\s+/);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dfws-browser-'));
  const bin = path.join(tmp, 'bin');
  mkdirSync(bin);
  symlinkSync(PYTHON, path.join(bin, 'python3'));
  symlinkSync(PYTHON, path.join(bin, 'python'));
  const env = {
    ...process.env,
    PATH: `${bin}:/usr/bin:${process.env.PATH || ''}`,
    DFWS_DEMO_DB: path.join(tmp, 'demo.sqlite3'),
    PYTHONUNBUFFERED: '1',
  };
  delete env.DJANGO_SETTINGS_MODULE;
  delete env.DFWS_DEMO_REDIS_URL;

  const executable = findExecutable(words[0], env.PATH);
  if (!executable) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`server command "${words[0]}" not found in PATH: install dfws (dfws-asgi) or set DFWS_SERVER_CMD, e.g. DFWS_SERVER_CMD=daphne`);
  }
  const migrate = spawnSync(PYTHON, ['manage.py', 'migrate', '--noinput'], {
    cwd: DEMO_DIR, env, encoding: 'utf8', timeout: 120000,
  });
  if (migrate.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`manage.py migrate failed (${migrate.status}):\n${migrate.stderr || migrate.error}`);
  }

  const port = await freePort();
  const args = [...words.slice(1), '-b', '127.0.0.1', '-p', String(port), 'demo.asgi:application'];
  const child = spawn(executable, args, { cwd: DEMO_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && exited === null; i += 1) await sleep(100);
      if (exited === null) {
        child.kill('SIGKILL');
        for (let i = 0; i < 50 && exited === null; i += 1) await sleep(100);
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited !== null) {
      await stop();
      throw new Error(`${words.join(' ')} exited (${JSON.stringify(exited)}) before serving:\n${output.slice(-4000)}`);
    }
    try {
      const res = await fetch(`${url}/static/demo/demo.js`);
      if (res.status === 200) break;
    } catch (err) {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${words.join(' ')} did not serve ${url}/static/demo/demo.js within 30 s:\n${output.slice(-4000)}`);
    }
    await sleep(100);
  }
  return { url, command: [executable, ...args].join(' '), stop, log: () => output };
}

/**
 * Launch Debian's chromium. playwright's launch() gives the browser a fresh
 * temporary user-data-dir, removed on close.
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    chromiumSandbox: false,
    timeout: 60000,
  });
}

/** Save a screenshot of every page and the server log under tests/artifacts/. */
export async function saveArtifacts(testName, pages, server) {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const base = testName.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80);
  const saved = [];
  for (const [label, page] of Object.entries(pages)) {
    if (!page || page.isClosed()) continue;
    const file = path.join(ARTIFACTS_DIR, `${base}-${label}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: 10000 });
      saved.push(file);
    } catch (err) {
      // the page may be gone; keep going
    }
  }
  if (server) {
    const file = path.join(ARTIFACTS_DIR, `${base}-server.log`);
    writeFileSync(file, server.log());
    saved.push(file);
  }
  return saved;
}
