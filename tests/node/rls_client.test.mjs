// An independent gRPC client for floodgate's Envoy rate limit service (envoy.service.ratelimit.v3
// RateLimitService/ShouldRateLimit and grpc.health.v1.Health/Check), written with @grpc/grpc-js
// and @grpc/proto-loader so that the wire format is proved by a second implementation of gRPC and
// protobuf, not by the C++ stubs the server itself is built from.
//
// The test writes its own envoyproxy/ratelimit config into a temporary directory, starts the
// floodgate binary on free loopback ports it picks itself, calls it over real gRPC, and stops the
// process it started (by its PID) in the `after` hook. Every call carries a deadline and every
// test a timeout.
//
//   FLOODGATE_BINARY=build/release/src/floodgate FLOODGATE_SOURCE_DIR=$PWD \
//     node --test tests/node/rls_client.test.mjs
//
// (tests/scripts/rls_node_client.sh runs it under CTest, installing the npm packages first.)
//
// Fields are read in proto-loader's camelCase (keepCase: false), enums as their names, int64s
// (google.protobuf.Duration.seconds) as strings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = path.resolve(process.env.FLOODGATE_SOURCE_DIR || path.join(here, '..', '..'));
const BINARY = path.resolve(
  process.env.FLOODGATE_BINARY || path.join(SOURCE_DIR, 'build', 'release', 'src', 'floodgate'));

const READY_TIMEOUT_MS = 15_000;
const CALL_DEADLINE_MS = 5_000;
const TEST_TIMEOUT_MS = 60_000;  // room for one wait past a window's edge (clearOfWindowEdge)
const MAX_UINT32 = 4294967295;
const HOUR_S = 3600;
const MINUTE_S = 60;
const DOMAIN = 'node-client';
const RLS_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';

// The config: three levels (value-less `tenant`, wildcard `route: foo*`, value-less `user`), an
// unlimited leaf, a value-less top-level key, a `name` + `replaces` pair, a shadow_mode limit,
// and a 50-per-hour key for the concurrency test. Hour units everywhere counting happens, so a
// window rarely ends during a test (and clearOfWindowEdge() waits when one would).
const CONFIG_YAML = `# Written by tests/node/rls_client.test.mjs
domain: ${DOMAIN}
descriptors:
  - key: tenant
    descriptors:
      - key: route
        value: "foo*"
        descriptors:
          - key: user
            rate_limit:
              name: per_user
              unit: hour
              requests_per_unit: 5
      - key: route
        value: health
        rate_limit:
          unlimited: true
  - key: client
    rate_limit:
      name: per_client
      unit: hour
      requests_per_unit: 4
  - key: vip
    rate_limit:
      name: vip
      replaces:
        - name: per_client
      unit: hour
      requests_per_unit: 100
  - key: plan
    value: free
    shadow_mode: true
    rate_limit:
      unit: hour
      requests_per_unit: 2
  - key: burst
    rate_limit:
      unit: hour
      requests_per_unit: 50
`;

const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [path.join(SOURCE_DIR, 'proto')],
};

// ---- helpers ------------------------------------------------------------------------------------

function loadProtos() {
  const definition = protoLoader.loadSync(
    ['envoy/service/ratelimit/v3/rls.proto', 'grpc/health/v1/health.proto'], LOADER_OPTIONS);
  return grpc.loadPackageDefinition(definition);
}

// A port free at the time of asking (the kernel's choice for port 0); the server start retries
// with new ports should another process take it meanwhile.
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child, ms) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function httpHealthOk(httpPort) {
  try {
    const res = await fetch(`http://127.0.0.1:${httpPort}/health`,
                            { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

// startFloodgate(): the binary on two free ports, ready (gRPC listening line logged and GET
// /health 200) within READY_TIMEOUT_MS; up to 3 tries when a port was taken in between.
async function startFloodgate(configDir) {
  let lastError;
  for (let attempt = 1; attempt <= 3; ++attempt) {
    const httpPort = await freePort();
    let grpcPort = await freePort();
    while (grpcPort === httpPort) grpcPort = await freePort();
    const args = ['serve', '--host', '127.0.0.1', '--port', String(httpPort),
                  '--grpc-port', String(grpcPort), '--rls-config', configDir,
                  '--log-format', 'text', '--limit-response-headers', 'true'];
    const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = { child, httpPort, grpcPort, output: '' };
    const keep = (chunk) => {
      server.output += chunk.toString();
      if (server.output.length > 200_000) server.output = server.output.slice(-100_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let spawnError = null;
    child.once('error', (e) => { spawnError = e; });

    const readyLine = `Envoy rate limit service (gRPC) listening on 127.0.0.1:${grpcPort}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    while (Date.now() < deadline && !spawnError && !exited(child)) {
      if (server.output.includes(readyLine) && await httpHealthOk(httpPort)) {
        ready = true;
        break;
      }
      await sleep(50);
    }
    if (ready) return server;
    if (spawnError) throw new Error(`cannot start ${BINARY}: ${spawnError.message}`);
    lastError = new Error(
      `floodgate was not ready within ${READY_TIMEOUT_MS} ms (attempt ${attempt}, ` +
      `exit ${child.exitCode}, signal ${child.signalCode}); its output:\n${server.output}`);
    await stopFloodgate(server);
    // A taken port makes the binary exit at once; anything else will not get better by retrying.
    if (!/cannot listen|address already in use|bind/i.test(server.output)) break;
  }
  throw lastError;
}

// stopFloodgate(): SIGTERM to the PID this test started, SIGKILL after 5 s.
async function stopFloodgate(server) {
  const { child } = server;
  if (!child.pid || exited(child)) return;
  try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
  if (await waitForExit(child, 5000)) return;
  try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  await waitForExit(child, 5000);
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + CALL_DEADLINE_MS }, (err, response) => {
      if (err) reject(err);
      else resolve(response);
    });
  });
}

// A descriptor from [[key, value], ...], with optional `limit` / `hitsAddend`.
function desc(entries, extra = {}) {
  return { entries: entries.map(([key, value]) => ({ key, value })), ...extra };
}

function seconds(duration) {
  assert.ok(duration, 'duration_until_reset is missing');
  return Number(duration.seconds) + duration.nanos / 1e9;
}

// duration_until_reset: within the unit, and the time left in the unit's window aligned to the
// Unix epoch (as envoyproxy/ratelimit's CalculateReset counts it), give or take 3 s of clock
// reading and call time.
function assertReset(status, unitSeconds) {
  const s = seconds(status.durationUntilReset);
  assert.ok(s > 0 && s <= unitSeconds,
            `duration_until_reset ${s} s should be in (0, ${unitSeconds}]`);
  const left = unitSeconds - ((Date.now() / 1000) % unitSeconds);
  const off = Math.min(Math.abs(s - left), unitSeconds - Math.abs(s - left));
  assert.ok(off <= 3, `duration_until_reset ${s} s, but the window ends in ${left.toFixed(3)} s`);
}

function assertNoLimit(status) {
  assert.equal(status.code, 'OK');
  assert.equal(status.currentLimit, null);
  assert.equal(status.limitRemaining, 0);
  assert.equal(status.durationUntilReset, null);
}

// Fixed windows are aligned to the Unix epoch: when the current window of `unitSeconds` ends
// within `marginSeconds`, wait until the next one has begun, so that a test's counts all land in
// one window.
async function clearOfWindowEdge(unitSeconds, marginSeconds) {
  const nowS = Date.now() / 1000;
  const left = unitSeconds - (nowS % unitSeconds);
  if (left < marginSeconds) await sleep(Math.ceil((left + 0.5) * 1000));
}

async function expectGrpcError(promise, code, detailsIncludes) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code,
                 `gRPC status ${err.code} (${err.details}), expected ${code}`);
    if (detailsIncludes) {
      assert.ok(String(err.details).includes(detailsIncludes),
                `"${err.details}" should name "${detailsIncludes}"`);
    }
    return true;
  });
}

function headerMap(response) {
  const map = new Map();
  for (const h of response.responseHeadersToAdd) map.set(h.key, h.value);
  return map;
}

// ---- the tests ----------------------------------------------------------------------------------

describe('floodgate Envoy RLS over gRPC, from a Node.js client', () => {
  let workDir;
  let server;
  let rls;
  let health;
  const unique = `${process.pid}-${Date.now()}`;  // values no other run's counters share
  const call = (request) => unary(rls, 'ShouldRateLimit', request);

  before(async () => {
    assert.ok(fs.existsSync(BINARY), `no floodgate binary at ${BINARY} (FLOODGATE_BINARY)`);
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'floodgate-node-rls-'));
    // Nested two levels below the directory floodgate is given: it reads *.yaml recursively.
    const configDir = path.join(workDir, 'rls');
    fs.mkdirSync(path.join(configDir, 'domains', 'node'), { recursive: true });
    fs.writeFileSync(path.join(configDir, 'domains', 'node', 'node-client.yaml'), CONFIG_YAML);

    const proto = loadProtos();
    server = await startFloodgate(configDir);
    const target = `127.0.0.1:${server.grpcPort}`;
    const credentials = grpc.credentials.createInsecure();
    rls = new proto.envoy.service.ratelimit.v3.RateLimitService(target, credentials);
    health = new proto.grpc.health.v1.Health(target, credentials);
  }, { timeout: 50_000 });

  after(async () => {
    rls?.close();
    health?.close();
    if (server) {
      const diedEarly = exited(server.child);
      await stopFloodgate(server);
      if (diedEarly || process.env.FLOODGATE_TEST_VERBOSE) {
        console.error(`floodgate output (exit ${server.child.exitCode}, signal ` +
                      `${server.child.signalCode}):\n${server.output.slice(-8000)}`);
      }
    }
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  }, { timeout: 20_000 });

  test('grpc.health.v1.Health/Check answers SERVING for "" and the RLS service', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const service of ['', RLS_SERVICE]) {
      const res = await unary(health, 'Check', { service });
      assert.equal(res.status, 'SERVING', `Check(${JSON.stringify(service)})`);
    }
    // gRPC's health protocol: a service the server does not know is NOT_FOUND.
    await expectGrpcError(unary(health, 'Check', { service: 'no.such.Service' }),
                          grpc.status.NOT_FOUND);
  });

  test('OK with current_limit; limit_remaining counts down; then OVER_LIMIT', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    const d = desc([['client', `c-${unique}`]]);
    for (let expected = 3; expected >= 0; --expected) {
      const res = await call({ domain: DOMAIN, descriptors: [d] });
      assert.equal(res.overallCode, 'OK');
      assert.equal(res.statuses.length, 1);
      const [st] = res.statuses;
      assert.equal(st.code, 'OK');
      assert.deepEqual(st.currentLimit, { requestsPerUnit: 4, unit: 'HOUR', name: 'per_client' });
      assert.equal(st.limitRemaining, expected);
      assertReset(st, HOUR_S);
    }
    for (let i = 0; i < 2; ++i) {
      const res = await call({ domain: DOMAIN, descriptors: [d] });
      assert.equal(res.overallCode, 'OVER_LIMIT');
      const [st] = res.statuses;
      assert.equal(st.code, 'OVER_LIMIT');
      assert.deepEqual(st.currentLimit, { requestsPerUnit: 4, unit: 'HOUR', name: 'per_client' });
      assert.equal(st.limitRemaining, 0);
      assertReset(st, HOUR_S);
    }
    // A value-less key counts each value apart.
    const other = await call({ domain: DOMAIN, descriptors: [desc([['client', `c2-${unique}`]])] });
    assert.equal(other.overallCode, 'OK');
    assert.equal(other.statuses[0].limitRemaining, 3);
  });

  test('three levels with a wildcard value; one OVER_LIMIT descriptor makes the whole answer OVER_LIMIT', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    const perUser = { requestsPerUnit: 5, unit: 'HOUR', name: 'per_user' };
    const leaf = (route, user) => desc([['tenant', `t-${unique}`], ['route', route], ['user', user]]);

    let res = await call({ domain: DOMAIN, descriptors: [leaf('foo-orders', 'u1')] });
    assert.equal(res.overallCode, 'OK');
    assert.deepEqual(res.statuses[0].currentLimit, perUser);
    assert.equal(res.statuses[0].limitRemaining, 4);
    assertReset(res.statuses[0], HOUR_S);

    // '*' matches the empty suffix too; each matched value and each user is its own counter.
    res = await call({ domain: DOMAIN, descriptors: [leaf('foo', 'u1'), leaf('foo-orders', 'u2')] });
    assert.deepEqual(res.statuses.map((s) => s.limitRemaining), [4, 4]);
    assert.deepEqual(res.statuses.map((s) => s.currentLimit), [perUser, perUser]);

    // No match: a route outside foo*, a path that stops on a node without a limit, an extra
    // entry below the leaf.
    res = await call({
      domain: DOMAIN,
      descriptors: [
        leaf('bar-foo', 'u1'),
        desc([['tenant', `t-${unique}`], ['route', 'foo-orders']]),
        desc([['tenant', `t-${unique}`]]),
        desc([['tenant', `t-${unique}`], ['route', 'foo-orders'], ['user', 'u1'], ['x', 'y']]),
      ],
    });
    assert.equal(res.overallCode, 'OK');
    assert.equal(res.statuses.length, 4);
    res.statuses.forEach(assertNoLimit);

    // Exhaust u3 with hits_addend 5, then one more: the answer is OVER_LIMIT overall while the
    // other descriptor of the same request is OK.
    res = await call({ domain: DOMAIN, hitsAddend: 5, descriptors: [leaf('foo-x', 'u3')] });
    assert.equal(res.overallCode, 'OK');
    assert.equal(res.statuses[0].limitRemaining, 0);
    res = await call({ domain: DOMAIN, descriptors: [leaf('foo-x', 'u3'), leaf('foo-x', 'u4')] });
    assert.equal(res.overallCode, 'OVER_LIMIT');
    assert.deepEqual(res.statuses.map((s) => s.code), ['OVER_LIMIT', 'OK']);
    assert.deepEqual(res.statuses.map((s) => s.limitRemaining), [0, 4]);
  });

  test('an unknown domain answers OK per descriptor without current_limit', { timeout: TEST_TIMEOUT_MS }, async () => {
    const res = await call({
      domain: `no-such-domain-${unique}`,
      descriptors: [desc([['client', 'a']]), desc([['k', 'v'], ['k2', 'v2']])],
    });
    assert.equal(res.overallCode, 'OK');
    assert.equal(res.statuses.length, 2);
    res.statuses.forEach(assertNoLimit);
    assert.deepEqual(res.responseHeadersToAdd, []);
    // A known domain with a key it does not configure: the same.
    const known = await call({ domain: DOMAIN, descriptors: [desc([['nobody', 'x']])] });
    assert.equal(known.overallCode, 'OK');
    assertNoLimit(known.statuses[0]);
  });

  test('unlimited answers OK with limit_remaining 4294967295', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = desc([['tenant', `t-${unique}`], ['route', 'health']]);
    for (let i = 0; i < 3; ++i) {
      const res = await call({ domain: DOMAIN, hitsAddend: 1000, descriptors: [d] });
      assert.equal(res.overallCode, 'OK');
      const [st] = res.statuses;
      assert.equal(st.code, 'OK');
      assert.equal(st.limitRemaining, MAX_UINT32);
      assert.equal(st.currentLimit, null);
    }
  });

  test('shadow_mode answers OK even past the limit', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    // plan=free is one counter for everyone: count from what it holds now (a peek).
    const d = desc([['plan', 'free']]);
    const peek = await call({ domain: DOMAIN, descriptors: [{ ...d, hitsAddend: { value: 0 } }] });
    let remaining = peek.statuses[0].limitRemaining;
    for (let i = 0; i < 5; ++i) {
      const res = await call({ domain: DOMAIN, descriptors: [d] });
      assert.equal(res.overallCode, 'OK', `call ${i + 1}`);
      const [st] = res.statuses;
      assert.equal(st.code, 'OK', `call ${i + 1}`);
      assert.deepEqual(st.currentLimit, { requestsPerUnit: 2, unit: 'HOUR', name: '' });
      remaining = Math.max(0, remaining - 1);
      assert.equal(st.limitRemaining, remaining, `call ${i + 1}`);
      assertReset(st, HOUR_S);
    }
  });

  test('a limit named in another matched limit\'s replaces is answered as no limit, and not counted', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    const client = desc([['client', `r-${unique}`]]);
    const vip = desc([['vip', `r-${unique}`]]);
    for (let expected = 99; expected >= 97; --expected) {
      const res = await call({ domain: DOMAIN, descriptors: [client, vip] });
      assert.equal(res.overallCode, 'OK');
      assertNoLimit(res.statuses[0]);
      assert.deepEqual(res.statuses[1].currentLimit,
                       { requestsPerUnit: 100, unit: 'HOUR', name: 'vip' });
      assert.equal(res.statuses[1].limitRemaining, expected);
    }
    // per_client was never counted while replaced.
    const alone = await call({ domain: DOMAIN, descriptors: [client] });
    assert.deepEqual(alone.statuses[0].currentLimit,
                     { requestsPerUnit: 4, unit: 'HOUR', name: 'per_client' });
    assert.equal(alone.statuses[0].limitRemaining, 3);
  });

  test('hits_addend: the request\'s, the descriptor\'s UInt64Value (which wins), 0 peeks', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    const d = desc([['burst', `h-${unique}`]]);
    const remainingAfter = async (request) => {
      const res = await call({ domain: DOMAIN, ...request });
      assert.equal(res.overallCode, 'OK');
      return res.statuses.map((s) => s.limitRemaining);
    };
    assert.deepEqual(await remainingAfter({ hitsAddend: 3, descriptors: [d] }), [47]);
    // Per descriptor: 2 wins over the request's 5.
    assert.deepEqual(
      await remainingAfter({ hitsAddend: 5, descriptors: [{ ...d, hitsAddend: { value: 2 } }] }),
      [45]);
    // Per descriptor 0: a peek, whatever the request says; nothing is counted.
    for (let i = 0; i < 2; ++i) {
      assert.deepEqual(
        await remainingAfter({ hitsAddend: 5, descriptors: [{ ...d, hitsAddend: { value: 0 } }] }),
        [45]);
    }
    // Request hits_addend 0 (absent) means 1.
    assert.deepEqual(await remainingAfter({ descriptors: [d] }), [44]);
    assert.deepEqual(await remainingAfter({ hitsAddend: 0, descriptors: [d] }), [43]);
    // Mixed in one request: the request's 4 for one descriptor, its own 10 for the other.
    const e = desc([['burst', `h2-${unique}`]]);
    assert.deepEqual(
      await remainingAfter({ hitsAddend: 4, descriptors: [d, { ...e, hitsAddend: { value: 10 } }] }),
      [39, 40]);
    // A descriptor hits_addend over the uint32 range travels as uint64: over the limit at once.
    const res = await call({
      domain: DOMAIN,
      descriptors: [{ ...desc([['burst', `h3-${unique}`]]), hitsAddend: { value: '4294967297' } }],
    });
    assert.equal(res.overallCode, 'OVER_LIMIT');
    assert.equal(res.statuses[0].code, 'OVER_LIMIT');
    assert.equal(res.statuses[0].limitRemaining, 0);
  });

  test('a descriptor\'s own limit (RateLimitOverride) replaces the configured one', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(MINUTE_S, 10);
    const override = { requestsPerUnit: 2, unit: 'MINUTE' };
    const expectedLimit = { requestsPerUnit: 2, unit: 'MINUTE', name: '' };
    // On a configured key (per_client is 4 per hour) and on a key the domain does not configure.
    for (const entries of [[['client', `o-${unique}`]], [['adhoc', `o-${unique}`]]]) {
      const d = desc(entries, { limit: override });
      for (let expected = 1; expected >= 0; --expected) {
        const res = await call({ domain: DOMAIN, descriptors: [d] });
        assert.equal(res.overallCode, 'OK');
        assert.deepEqual(res.statuses[0].currentLimit, expectedLimit);
        assert.equal(res.statuses[0].limitRemaining, expected);
        assertReset(res.statuses[0], MINUTE_S);
      }
      const res = await call({ domain: DOMAIN, descriptors: [d] });
      assert.equal(res.overallCode, 'OVER_LIMIT');
      assert.equal(res.statuses[0].code, 'OVER_LIMIT');
      assert.deepEqual(res.statuses[0].currentLimit, expectedLimit);
    }
    // Every RateLimitUnit number travels: SECOND..YEAR come back under the same names.
    for (const unit of ['SECOND', 'MINUTE', 'HOUR', 'DAY', 'MONTH', 'YEAR']) {
      const res = await call({
        domain: DOMAIN,
        descriptors: [desc([['adhoc', `unit-${unit}-${unique}`]],
                           { limit: { requestsPerUnit: 7, unit } })],
      });
      assert.equal(res.statuses[0].code, 'OK');
      assert.deepEqual(res.statuses[0].currentLimit, { requestsPerUnit: 7, unit, name: '' });
      assert.equal(res.statuses[0].limitRemaining, 6);
    }
    // An override without a unit is refused, naming the field.
    await expectGrpcError(
      call({ domain: DOMAIN,
             descriptors: [desc([['client', 'x']], { limit: { requestsPerUnit: 1 } })] }),
      grpc.status.INVALID_ARGUMENT, 'descriptors[0].limit.unit');
  });

  // envoyproxy/ratelimit keys each counter by its window start as well
  // (domain_key_value_<window start>), so an override with another unit never touches the
  // configured limit's counter; floodgate keys it by the window length.
  test('an override with another unit does not reset the configured limit\'s counter', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    await clearOfWindowEdge(MINUTE_S, 10);
    const d = desc([['client', `ov-${unique}`]]);
    for (let expected = 3; expected >= 0; --expected) {
      const res = await call({ domain: DOMAIN, descriptors: [d] });
      assert.equal(res.statuses[0].limitRemaining, expected);
    }
    const minute = await call({
      domain: DOMAIN, descriptors: [{ ...d, limit: { requestsPerUnit: 10, unit: 'MINUTE' } }] });
    assert.equal(minute.statuses[0].code, 'OK');
    assert.equal(minute.statuses[0].limitRemaining, 9);
    // per_client (4 per hour) has counted 4: the next call is over it.
    const res = await call({ domain: DOMAIN, descriptors: [d] });
    assert.equal(res.overallCode, 'OVER_LIMIT', `got remaining ${res.statuses[0].limitRemaining}`);
  });

  test('response_headers_to_add carries RateLimit-Limit/-Remaining/-Reset of the closest descriptor', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    let res = await call({ domain: DOMAIN, descriptors: [desc([['client', `hd-${unique}`]])] });
    let headers = headerMap(res);
    assert.deepEqual([...headers.keys()].sort(),
                     ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']);
    assert.equal(headers.get('RateLimit-Limit'), '4');
    assert.equal(headers.get('RateLimit-Remaining'), '3');
    const reset = Number(headers.get('RateLimit-Reset'));
    assert.ok(Number.isInteger(reset) && reset >= 1 && reset <= HOUR_S, `RateLimit-Reset ${reset}`);
    assert.equal(reset, Math.ceil(seconds(res.statuses[0].durationUntilReset)));

    // Two limits: the headers describe the one with the least remaining (client: 2 left, burst 49).
    res = await call({
      domain: DOMAIN,
      descriptors: [desc([['burst', `hd-${unique}`]]), desc([['client', `hd-${unique}`]])],
    });
    assert.deepEqual(res.statuses.map((s) => s.limitRemaining), [49, 2]);
    headers = headerMap(res);
    assert.equal(headers.get('RateLimit-Limit'), '4');
    assert.equal(headers.get('RateLimit-Remaining'), '2');
  });

  test('malformed requests: INVALID_ARGUMENT naming the field; over 1 MiB: RESOURCE_EXHAUSTED', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = desc([['client', 'x']]);
    await expectGrpcError(call({ domain: '', descriptors: [d] }),
                          grpc.status.INVALID_ARGUMENT, 'domain');
    await expectGrpcError(call({ domain: DOMAIN, descriptors: [] }),
                          grpc.status.INVALID_ARGUMENT, 'descriptors');
    await expectGrpcError(call({ domain: DOMAIN, descriptors: [desc([['', 'v']])] }),
                          grpc.status.INVALID_ARGUMENT, 'entries[0].key');
    await expectGrpcError(
      call({ domain: DOMAIN, descriptors: [d, desc([['a', 'b'], ['', 'c']])] }),
      grpc.status.INVALID_ARGUMENT, 'descriptors[1].entries[1].key');
    await expectGrpcError(call({ domain: DOMAIN, descriptors: [{ entries: [] }] }),
                          grpc.status.INVALID_ARGUMENT, 'descriptors[0].entries');
    const big = 'x'.repeat((1 << 20) + 1024);
    await expectGrpcError(call({ domain: DOMAIN, descriptors: [desc([['client', big]])] }),
                          grpc.status.RESOURCE_EXHAUSTED);
    // The channel and the server go on answering after all of that.
    const res = await call({ domain: DOMAIN, descriptors: [desc([['client', `ok-${unique}`]])] });
    assert.equal(res.overallCode, 'OK');
    assert.equal(res.statuses[0].limitRemaining, 3);
  });

  test('200 concurrent calls on one 50-per-hour key admit exactly 50', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 30);
    const d = desc([['burst', `cc-${unique}`]]);
    const results = await Promise.all(
      Array.from({ length: 200 }, () => call({ domain: DOMAIN, descriptors: [d] })));
    const ok = results.filter((r) => r.overallCode === 'OK');
    const over = results.filter((r) => r.overallCode === 'OVER_LIMIT');
    assert.equal(ok.length, 50, 'admitted');
    assert.equal(over.length, 150, 'refused');
    // Each admitted call saw its own place in the count: remaining 0..49, each once.
    assert.deepEqual(ok.map((r) => r.statuses[0].limitRemaining).sort((a, b) => a - b),
                     Array.from({ length: 50 }, (_, i) => i));
    for (const r of over) {
      assert.equal(r.statuses[0].code, 'OVER_LIMIT');
      assert.equal(r.statuses[0].limitRemaining, 0);
      assert.deepEqual(r.statuses[0].currentLimit, { requestsPerUnit: 50, unit: 'HOUR', name: '' });
    }
    const peek = await call({ domain: DOMAIN, descriptors: [{ ...d, hitsAddend: { value: 0 } }] });
    assert.equal(peek.statuses[0].limitRemaining, 0);
  });

  test('the server is still up and healthy after all of the above', { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.equal(exited(server.child), false,
                 `floodgate exited (code ${server.child.exitCode}, signal ${server.child.signalCode})`);
    assert.equal(await httpHealthOk(server.httpPort), true);
    const res = await unary(health, 'Check', { service: RLS_SERVICE });
    assert.equal(res.status, 'SERVING');
  });
});
