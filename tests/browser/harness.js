// Helpers of the browser end-to-end tests: start the demo project under the
// server being tested, launch Debian's chromium through playwright-core
// (never a downloaded browser), keep screenshots when a test fails.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');
// DFWS_DEMO_DIR: serve a copy of the demo (with its df_websockets) instead
export const DEMO_DIR = process.env.DFWS_DEMO_DIR ? path.resolve(process.env.DFWS_DEMO_DIR) : path.join(REPO_ROOT, 'demo');
export const ARTIFACTS_DIR = path.join(REPO_ROOT, 'tests', 'artifacts');
// The venv dfws is installed in (scripts/build.sh), or DFWS_PYTHON.
export const PYTHON = process.env.DFWS_PYTHON || path.join(REPO_ROOT, '.venv', 'bin', 'python3');
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

async function waitExit(state, ms) {
  for (let waited = 0; state.exited === null && waited < ms; waited += 100) await sleep(100);
  return state.exited !== null;
}

/**
 * Start `$DFWS_SERVER_CMD` (default `dfws-asgi`; may hold extra words, e.g.
 * "daphne -v 1") on a free loopback port, serving demo.asgi:application from
 * demo/, with a private SQLite database and PYTHON's bin folder first on PATH.
 * `options.env` adds variables (e.g. DFWS_DEMO_REDIS_URL; the caller's own
 * DJANGO_SETTINGS_MODULE and DFWS_DEMO_REDIS_URL are never inherited);
 * `options.dir` serves another copy of the demo; `options.argv(port)`
 * replaces the server command (e.g. `[PYTHON, 'manage.py', 'runserver', ...]`).
 * Resolves once /static/demo/demo.js answers 200 to {url, port, env, command,
 * log(), kill(signal), restart(), stop()}:
 * - kill(signal) sends `signal` to the server and waits for its exit (the
 *   database and the port are kept, for restart());
 * - restart() starts the same command again on the same port;
 * - stop() ends the server (SIGTERM, then SIGKILL after 10 s) and removes
 *   its temporary folder.
 * log() is the output of every run, restarts marked by a "--- restart" line.
 */
export async function startDemoServer(options = {}) {
  const dir = options.dir || DEMO_DIR;
  const words = (process.env.DFWS_SERVER_CMD || 'dfws-asgi').trim().split(/\s+/);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dfws-browser-'));
  const env = {
    ...process.env,
    PATH: `${path.dirname(PYTHON)}:${process.env.PATH || ''}`,
    DFWS_DEMO_DB: path.join(tmp, 'demo.sqlite3'),
    PYTHONUNBUFFERED: '1',
  };
  delete env.DJANGO_SETTINGS_MODULE;
  delete env.DFWS_DEMO_REDIS_URL;
  Object.assign(env, options.env || {});

  const executable = options.argv ? options.argv(0)[0] : findExecutable(words[0], env.PATH);
  if (!executable) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`server command "${words[0]}" not found in PATH: install dfws (dfws-asgi) or set DFWS_SERVER_CMD, e.g. DFWS_SERVER_CMD=daphne`);
  }
  const migrate = spawnSync(PYTHON, ['manage.py', 'migrate', '--noinput'], {
    cwd: dir, env, encoding: 'utf8', timeout: 120000,
  });
  if (migrate.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`manage.py migrate failed (${migrate.status}):\n${migrate.stderr || migrate.error}`);
  }

  const port = await freePort();
  const args = options.argv ? options.argv(port).slice(1)
    : [...words.slice(1), '-b', '127.0.0.1', '-p', String(port), 'demo.asgi:application'];
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  let state = null; // {child, exited} of the current run
  let removed = false;

  const terminate = async () => {
    if (state && state.exited === null) {
      state.child.kill('SIGTERM');
      if (!await waitExit(state, 10000)) {
        state.child.kill('SIGKILL');
        await waitExit(state, 5000);
      }
    }
  };
  const stop = async () => {
    await terminate();
    if (!removed) {
      removed = true;
      rmSync(tmp, { recursive: true, force: true });
    }
  };
  const launch = async () => {
    const child = spawn(executable, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const run = { child, exited: null };
    state = run;
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code, signal) => { run.exited = { code, signal }; });
    child.on('error', (err) => { output += `\n[spawn error] ${err.message}\n`; run.exited = run.exited || { code: null, signal: null, error: err.message }; });
    const deadline = Date.now() + 30000;
    for (;;) {
      if (run.exited !== null) {
        throw new Error(`${words.join(' ')} exited (${JSON.stringify(run.exited)}) before serving ${url}:\n${output.slice(-4000)}`);
      }
      try {
        const res = await fetch(`${url}/static/demo/demo.js`);
        if (res.status === 200) break;
      } catch (err) {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`${words.join(' ')} did not serve ${url}/static/demo/demo.js within 30 s:\n${output.slice(-4000)}`);
      }
      await sleep(100);
    }
  };
  try {
    await launch();
  } catch (err) {
    await stop();
    throw err;
  }

  const kill = async (signal = 'SIGKILL') => {
    if (!state || state.exited !== null) throw new Error('kill(): the server is not running');
    output += `\n--- harness: ${signal} to pid ${state.child.pid}\n`;
    state.child.kill(signal);
    if (!await waitExit(state, 10000)) throw new Error(`the server did not exit within 10 s of ${signal}`);
    return state.exited;
  };
  const restart = async () => {
    if (state && state.exited === null) throw new Error('restart(): the server is still running');
    output += `\n--- harness: restart on port ${port}\n`;
    await launch(); // stop() still cleans up if this throws
  };
  return {
    label: 'server', url, port, env, command: [executable, ...args].join(' '), stop, kill, restart, log: () => output,
  };
}

/**
 * Start a private redis-server on a free loopback port, without persistence.
 * Resolves to {label, url: redis://127.0.0.1:PORT/0, port, log(), stop()} once
 * it answers PING.
 */
export async function startRedis() {
  const executable = findExecutable('redis-server', `/usr/bin:/usr/sbin:${process.env.PATH || ''}`);
  if (!executable) throw new Error('redis-server not found: apt-get install redis-server');
  const port = await freePort();
  const child = spawn(executable, ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], {
    cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = { child, exited: null };
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  child.on('exit', (code, signal) => { run.exited = { code, signal }; });
  child.on('error', (err) => { output += `\n[spawn error] ${err.message}\n`; run.exited = run.exited || { code: null, signal: null }; });
  const stop = async () => {
    if (run.exited === null) {
      child.kill('SIGTERM');
      if (!await waitExit(run, 5000)) {
        child.kill('SIGKILL');
        await waitExit(run, 5000);
      }
    }
  };
  const deadline = Date.now() + 10000;
  while (!await redisPing(port)) {
    if (run.exited !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} ${run.exited ? `exited (${JSON.stringify(run.exited)})` : 'did not answer PING within 10 s'}:\n${output.slice(-2000)}`);
    }
    await sleep(100);
  }
  return { label: 'redis', url: `redis://127.0.0.1:${port}/0`, port, stop, log: () => output };
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port }, () => sock.write('PING\r\n'));
    let answer = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on('data', (chunk) => {
      answer += chunk;
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

/**
 * Run `PYTHON manage.py ...args` in the demo folder with the
 * environment of `server` (same database, same DFWS_DEMO_REDIS_URL), as a
 * separate process. Resolves to {status, signal, stdout, stderr, log()}; a
 * command still running after `timeoutMs` is killed (status null).
 */
export function runManage(server, args, timeoutMs = 30000) {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, ['manage.py', ...args], { cwd: DEMO_DIR, env: server.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const finish = (status, signal, error) => {
      clearTimeout(timer);
      const log = () => `$ ${PYTHON} manage.py ${args.map((a) => JSON.stringify(a)).join(' ')}\nstatus ${status} signal ${signal}${error ? ` error ${error}` : ''}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
      resolve({ label: 'manage', status, signal, stdout, stderr, log });
    };
    child.on('error', (err) => finish(null, null, err.message));
    child.on('close', (status, signal) => finish(status, signal, null));
  });
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

/**
 * Save a screenshot of every page and the log of every process under
 * tests/artifacts/. `logs` is one {label, log()} source (a server: saved as
 * <test>-server.log) or an array of them (<test>-<label>.log each).
 */
export async function saveArtifacts(testName, pages, logs) {
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
  const sources = (Array.isArray(logs) ? logs : [logs]).filter(Boolean);
  const used = new Set();
  for (const source of sources) {
    let label = (source.label || 'server').replace(/[^A-Za-z0-9_.-]+/g, '_');
    for (let i = 2; used.has(label); i += 1) label = `${source.label || 'server'}${i}`;
    used.add(label);
    const file = path.join(ARTIFACTS_DIR, `${base}-${label}.log`);
    writeFileSync(file, source.log());
    saved.push(file);
  }
  return saved;
}

/**
 * Run `body(watch)`; `watch(label, page)` registers a page (and its browser
 * console) and returns it. When the body throws, screenshots of the pages and
 * the logs of `logSources()` (servers, redis, commands: {label, log()}) are
 * saved and listed in the error message with the console lines. The pages'
 * contexts are closed in every case.
 */
export async function runScenario(t, logSources, body) {
  const pages = {};
  const consoleLines = [];
  const watch = (label, page) => {
    pages[label] = page;
    page.on('console', (msg) => consoleLines.push(`[${label}] ${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => consoleLines.push(`[${label}] pageerror: ${err.message}`));
    return page;
  };
  try {
    await body(watch);
  } catch (err) {
    const sources = logSources().filter(Boolean);
    const saved = await saveArtifacts(t.name, pages, sources);
    const commands = sources.filter((s) => s.command).map((s) => `server: ${s.command}`);
    err.message += `\n${commands.join('\n')}\nartifacts: ${saved.join(', ')}\nbrowser console:\n${consoleLines.join('\n')}`;
    throw err;
  } finally {
    for (const page of Object.values(pages)) {
      if (!page.isClosed()) await page.context().close().catch(() => {});
    }
  }
}
