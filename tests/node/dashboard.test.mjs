// The live dashboard (src/admin/dashboard/index.html, served at GET / of the admin port) in a real
// browser: Debian's headless Chromium (/usr/bin/chromium, or FLOODGATE_CHROMIUM) driven through
// puppeteer-core, against the real floodgate binary.
//
// One floodgate process (memory store, admin port with a random ADMIN_TOKEN, no gRPC) on free
// loopback ports, one Chromium with a fresh profile in a temporary directory. The page is opened
// without a token (it must ask for one), given the token through its token field, and then:
//   - traffic on the check port (a fixed_window key of limit 5 hammered, most checks 429, plus
//     allowed checks on other keys) must show as a non-zero denied rate and as `hot-key` in the top
//     limited keys, from the live stats stream (GET /admin/events read with fetch());
//   - a key blocklisted through the blocklist form must appear in the blocklist table and be
//     refused by POST /v1/check with 403 "blocklisted"; deleted through the table's button, it must
//     be checked normally again.
// A screenshot of the page goes to $FLOODGATE_ARTIFACT_DIR/dashboard.png (default: the system's
// temporary directory); on a failure, dashboard-failure.png next to it.
//
// Every wait is bounded, only 127.0.0.1 is used, and the `after` hook stops the processes this file
// started by their PIDs and removes the temporary directory.
//
//   FLOODGATE_BINARY=build/release/src/floodgate node --test tests/node/dashboard.test.mjs
//
// (tests/scripts/dashboard_test.sh runs it under CTest, installing the npm packages first.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import puppeteer from 'puppeteer-core';

import { exited, freePort, spawnChild, stopChild, track, waitForExit } from './children.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = path.resolve(process.env.FLOODGATE_SOURCE_DIR || path.join(here, '..', '..'));
const BINARY = path.resolve(
  process.env.FLOODGATE_BINARY || path.join(SOURCE_DIR, 'build', 'release', 'src', 'floodgate'));
const CHROMIUM = process.env.FLOODGATE_CHROMIUM || '/usr/bin/chromium';
const ARTIFACT_DIR = path.resolve(process.env.FLOODGATE_ARTIFACT_DIR || os.tmpdir());

const READY_TIMEOUT_MS = 15_000;
const BROWSER_TIMEOUT_MS = 30_000;   // Chromium's start and each DevTools call
const PAGE_WAIT_MS = 10_000;         // for something to show on the page
const SERVER_WAIT_MS = 5_000;        // for a change made in the page to reach the check port
const REQUEST_TIMEOUT_MS = 5_000;
const TEST_TIMEOUT_MS = 60_000;
const TRAFFIC_MIN_MS = 3_000;        // traffic runs at least this long (a few seconds on the chart)
const TRAFFIC_MAX_MS = 25_000;       // and stops by itself after this long

// Exactly these flags (ignoreDefaultArgs): headless, no sandbox (containers, root), nothing that
// reaches out to the network on its own. DevTools talks over a pipe, so no debugging port opens.
const CHROMIUM_FLAGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const VIEWPORT = { width: 1280, height: 800 };

// The hot key: 5 per minute, hammered, so nearly every check of it is a 429.
const HOT_CHECK = { key: 'hot-key', algorithm: 'fixed_window', limit: 5, window: 60 };
const EVIL_KEY = 'evil-key';

// ---- processes ------------------------------------------------------------------------------------

// The environment floodgate runs with: only what a process needs to run (and sanitizer or
// coverage settings of an instrumented build), none of the caller's REDIS_*, ADMIN_*, PORT, ...
function baseEnv() {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'].includes(name) ||
        /^(ASAN|UBSAN|LSAN|TSAN|MSAN)_OPTIONS$|^LLVM_PROFILE_FILE$|^GCOV_/.test(name)) {
      env[name] = value;
    }
  }
  return env;
}

async function answers(url, okStatus) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return okStatus === undefined || res.status === okStatus;
  } catch {
    return false;
  }
}

// startFloodgate(): `floodgate serve` configured through its environment on two free loopback
// ports, ready (GET /health 200 on the check port, an HTTP answer on the admin port) within
// READY_TIMEOUT_MS; up to 3 tries when a port was taken in between.
async function startFloodgate(workDir, token) {
  let lastError;
  for (let attempt = 1; attempt <= 3; ++attempt) {
    const port = await freePort();
    let adminPort = await freePort();
    while (adminPort === port) adminPort = await freePort();
    const env = {
      ...baseEnv(), PORT: String(port), ADMIN_PORT: String(adminPort), ADMIN_HOST: '127.0.0.1',
      ADMIN_TOKEN: token, GRPC_PORT: '-1', HOST: '127.0.0.1',
    };
    const server = Object.assign(spawnChild(BINARY, ['serve'], { env, cwd: workDir }),
                                 { port, adminPort });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    while (Date.now() < deadline && !server.spawnError && !exited(server.child)) {
      if (await answers(`http://127.0.0.1:${port}/health`, 200) &&
          await answers(`http://127.0.0.1:${adminPort}/`)) {
        ready = true;
        break;
      }
      await sleep(50);
    }
    if (ready) return server;
    if (server.spawnError) throw new Error(`cannot start ${BINARY}: ${server.spawnError.message}`);
    lastError = new Error(
      `floodgate was not ready within ${READY_TIMEOUT_MS} ms (attempt ${attempt}, ` +
      `exit ${server.child.exitCode}, signal ${server.child.signalCode}); its output:\n${server.output}`);
    await stopChild(server);
    // A taken port makes the binary exit at once; anything else will not get better by retrying.
    if (!/cannot listen|address already in use|bind/i.test(server.output)) break;
  }
  throw lastError;
}

async function launchChromium(profileDir) {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${profileDir}`,
           `--window-size=${VIEWPORT.width},${VIEWPORT.height}`, '--hide-scrollbars', 'about:blank'],
    pipe: true,
    timeout: BROWSER_TIMEOUT_MS,
    protocolTimeout: BROWSER_TIMEOUT_MS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  track(browser.process());
  return browser;
}

// closeChromium(): a polite close, then SIGKILL to the PID puppeteer started.
async function closeChromium(browser) {
  const child = browser.process();
  // An unref'd timer: it must not keep this process alive once the browser has closed.
  await Promise.race([browser.close().catch(() => {}), sleep(10_000, undefined, { ref: false })]);
  if (child && child.pid && !exited(child)) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    await waitForExit(child, 5000);
  }
}

// ---- HTTP --------------------------------------------------------------------------------------

// check(): POST /v1/check on the check port; the status and the parsed body.
async function check(port, body) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/check`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* kept as text */ }
  return { status: res.status, body: json, text };
}

async function admin(server, token, method, urlPath) {
  const res = await fetch(`http://127.0.0.1:${server.adminPort}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// checkUntil(): checks `body` until `done(answer)` or SERVER_WAIT_MS; the last answer.
async function checkUntil(port, body, done) {
  const deadline = Date.now() + SERVER_WAIT_MS;
  for (;;) {
    const answer = await check(port, body);
    if (done(answer) || Date.now() >= deadline) return answer;
    await sleep(100);
  }
}

// driveTraffic(): batches of 20 checks of the hot key and 4 of calm keys that stay allowed, for at
// least TRAFFIC_MIN_MS, until stop() (or TRAFFIC_MAX_MS); counts the answers by status.
function driveTraffic(port) {
  const counts = new Map();
  let stopped = false;
  const start = Date.now();
  const done = (async () => {
    const deadline = start + TRAFFIC_MAX_MS;
    let n = 0;
    while ((!stopped || Date.now() < start + TRAFFIC_MIN_MS) && Date.now() < deadline) {
      const batch = [];
      for (let i = 0; i < 20; ++i) batch.push(check(port, HOT_CHECK));
      for (let i = 0; i < 4; ++i) {
        batch.push(check(port, { key: `calm-key-${n++ % 50}`, algorithm: 'fixed_window',
                                 limit: 1000, window: 60 }));
      }
      for (const r of await Promise.allSettled(batch)) {
        const status = r.status === 'fulfilled' ? r.value.status : 'error';
        counts.set(status, (counts.get(status) || 0) + 1);
      }
      await sleep(50);
    }
  })();
  return {
    counts,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

// ---- the page ------------------------------------------------------------------------------------

// What the page shows, for failure messages.
function pageState(page) {
  return page.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.textContent.trim().replace(/\s+/g, ' ');
    const data = (sel) => document.querySelector(sel)?.dataset.value;
    return JSON.stringify({
      stream: document.querySelector('#stream-state')?.title,
      auth: document.querySelector('#auth-banner')?.hidden ? '' : text('#auth-text'),
      deniedPerSecond1s: data('#rate-denied-1s'),
      deniedPerSecond1m: data('#rate-denied-1m'),
      topKeys: text('#top-keys tbody'),
      blocklist: text('#blocklist-table tbody'),
      blocklistMessage: text('#blocklist-error'),
    });
  }).catch((e) => `(cannot read the page: ${e.message})`);
}

// waitInPage(): until `predicate` (run in the page) is truthy, at most PAGE_WAIT_MS; its value.
async function waitInPage(page, what, predicate, ...args) {
  try {
    const handle = await page.waitForFunction(predicate, { timeout: PAGE_WAIT_MS, polling: 100 },
                                              ...args);
    return await handle.jsonValue();
  } catch (e) {
    throw new Error(`the page did not show ${what} within ${PAGE_WAIT_MS} ms (${e.message}); ` +
                    `the page: ${await pageState(page)}`);
  }
}

// ---- the suite -----------------------------------------------------------------------------------

describe('the admin dashboard in headless Chromium', { timeout: 4 * TEST_TIMEOUT_MS }, () => {
  let workDir;
  let server;
  let browser;
  let page;
  const token = crypto.randomBytes(24).toString('hex');
  const pageErrors = [];

  // A failed test leaves a screenshot of what the page showed.
  async function shotOnFailure(fn) {
    try {
      await fn();
    } catch (e) {
      if (page) {
        const file = path.join(ARTIFACT_DIR, 'dashboard-failure.png');
        try {
          fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
          await page.screenshot({ path: file, fullPage: true });
          console.log(`dashboard failure screenshot: ${file}`);
        } catch { /* the failure itself is what matters */ }
      }
      throw e;
    }
  }

  before(async () => {
    try {
      fs.accessSync(BINARY, fs.constants.X_OK);
    } catch {
      throw new Error(`no executable floodgate binary at ${BINARY} (set FLOODGATE_BINARY)`);
    }
    try {
      fs.accessSync(CHROMIUM, fs.constants.X_OK);
    } catch {
      throw new Error(`no Chromium at ${CHROMIUM} (Debian: apt-get install chromium; ` +
                      'scripts/install-deps.sh installs it)');
    }
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'floodgate-dashboard-'));
    const profileDir = path.join(workDir, 'chromium-profile');
    fs.mkdirSync(profileDir);
    server = await startFloodgate(workDir, token);
    browser = await launchChromium(profileDir);
    page = await browser.newPage();
    page.setDefaultTimeout(BROWSER_TIMEOUT_MS);
    await page.setViewport(VIEWPORT);
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, { timeout: 2 * TEST_TIMEOUT_MS });

  after(async () => {
    if (browser) await closeChromium(browser);
    if (server) await stopChild(server);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true, maxRetries: 3 });
  });

  test('GET / on the admin port serves the dashboard without a token', { timeout: TEST_TIMEOUT_MS },
       async () => {
    const res = await fetch(`http://127.0.0.1:${server.adminPort}/`,
                            { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const html = await res.text();
    assert.equal(res.status, 200, `GET / answered ${res.status}: ${html.slice(0, 300)}`);
    assert.match(res.headers.get('content-type') || '', /^text\/html/);
    assert.match(html, /id="token-input"/);
    // The stats need the token.
    const stats = await fetch(`http://127.0.0.1:${server.adminPort}/admin/stats`,
                              { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await stats.arrayBuffer();
    assert.equal(stats.status, 401);
  });

  test('the page asks for the token, and with it streams the stats', { timeout: TEST_TIMEOUT_MS },
       () => shotOnFailure(async () => {
    await page.goto(`http://127.0.0.1:${server.adminPort}/`,
                    { waitUntil: 'load', timeout: BROWSER_TIMEOUT_MS });
    await waitInPage(page, 'the "needs a token" banner',
                     () => !document.querySelector('#auth-banner').hidden);

    await page.type('#token-input', token);
    await page.click('#token-save');
    await waitInPage(page, 'the stream connected',
                     () => document.querySelector('#stream-state').dataset.state === 'connected');
    await waitInPage(page, 'the instance id in the header', () => {
      const id = document.querySelector('#instance-id').textContent.trim();
      return id.length > 1 && id;
    });
    assert.equal(await page.$eval('#auth-banner', (n) => n.hidden), true);
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  }));

  test('denied traffic shows as a denied rate and hot-key in the top limited keys',
       { timeout: TEST_TIMEOUT_MS }, () => shotOnFailure(async () => {
    const traffic = driveTraffic(server.port);
    try {
      await waitInPage(page, 'a non-zero denied rate over the last second',
                       () => Number(document.querySelector('#rate-denied-1s').dataset.value) > 0);
      await waitInPage(page, 'hot-key in the top limited keys', () =>
        [...document.querySelectorAll('#top-keys tbody tr')].some(
          (row) => row.dataset.key === 'hot-key' && row.textContent.includes('hot-key')));
    } finally {
      await traffic.stop();
    }
    const counts = Object.fromEntries(traffic.counts);
    assert.ok((counts[429] || 0) > 0, `the hot key was never denied: ${JSON.stringify(counts)}`);
    assert.ok((counts[200] || 0) > 0, `no check was allowed: ${JSON.stringify(counts)}`);

    const state = await page.evaluate(() => ({
      denied1m: Number(document.querySelector('#rate-denied-1m').dataset.value),
      allowed1m: Number(document.querySelector('#rate-allowed-1m').dataset.value),
      hotCount: Number(document.querySelector('#top-keys tr[data-key="hot-key"] td:nth-child(3)')
        .textContent.replace(/,/g, '')),
      deniedLine: document.querySelector('#chart .line-denied').getAttribute('d') || '',
    }));
    assert.ok(state.denied1m > 0, `denied /s over 1 min: ${state.denied1m}`);
    assert.ok(state.allowed1m > 0, `allowed /s over 1 min: ${state.allowed1m}`);
    assert.ok(state.hotCount > 0, `hot-key's count: ${state.hotCount}`);
    assert.ok(state.deniedLine.startsWith('M'), 'the chart has no denied line');
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  }));

  test('a key blocklisted through the form is refused with 403, and checked again once deleted',
       { timeout: TEST_TIMEOUT_MS }, () => shotOnFailure(async () => {
    const before = await check(server.port, { key: EVIL_KEY });
    assert.notEqual(before.status, 403, `evil-key was refused before it was blocklisted: ${before.text}`);

    await page.select('#blocklist-kind', 'key');
    await page.click('#blocklist-value', { count: 3 });
    await page.type('#blocklist-value', EVIL_KEY);
    await page.click('#blocklist-submit');
    const shown = await waitInPage(page, 'evil-key in the blocklist table (or an error)', (key) => {
      const row = document.querySelector(`#blocklist-table tr[data-testid="blocklist-row"][data-value="${key}"]`);
      if (row && row.textContent.includes(key)) return { row: true };
      const msg = document.querySelector('#blocklist-error');
      return msg.classList.contains('error') && msg.textContent ? { error: msg.textContent } : null;
    }, EVIL_KEY);
    assert.equal(shown.error, undefined, `the blocklist form showed an error: ${shown.error}`);

    // The page sent a key entry, not an IP one.
    const list = await admin(server, token, 'GET', '/admin/blocklist');
    assert.equal(list.status, 200);
    assert.ok(list.body.entries.some((e) => e.key === EVIL_KEY),
              `GET /admin/blocklist: ${JSON.stringify(list.body)}`);

    const refused = await checkUntil(server.port, { key: EVIL_KEY }, (a) => a.status === 403);
    assert.equal(refused.status, 403, `a blocklisted key was answered ${refused.status}: ${refused.text}`);
    assert.equal(refused.body?.reason, 'blocklisted', refused.text);

    fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
    const shot = path.join(ARTIFACT_DIR, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshot: ${shot}`);

    // Delete: the first click arms the button, the second deletes.
    const button =
      `#blocklist-table tr[data-value="${EVIL_KEY}"] button[data-testid="blocklist-delete"]`;
    await page.click(button);
    await page.waitForSelector(`${button}.confirm`, { timeout: PAGE_WAIT_MS });
    await page.click(button);
    await waitInPage(page, 'evil-key gone from the blocklist table', (key) =>
      !document.querySelector(`#blocklist-table tr[data-value="${key}"]`), EVIL_KEY);

    const again = await checkUntil(server.port, { key: EVIL_KEY }, (a) => a.status !== 403);
    assert.notEqual(again.status, 403, `evil-key is still refused once deleted: ${again.text}`);
    assert.ok(again.status === 200 || again.status === 429, again.text);
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  }));
});
