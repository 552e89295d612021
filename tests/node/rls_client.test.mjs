// An independent gRPC client for floodgate's Envoy rate limit service (envoy.service.ratelimit.v3
// RateLimitService/ShouldRateLimit and grpc.health.v1.Health/Check), written with @grpc/grpc-js
// and @grpc/proto-loader so that the wire format is proved by a second implementation of gRPC and
// protobuf, not by the C++ stubs the server itself is built from.
//
// Three suites, each with a floodgate process of its own:
//   - the client suite on the memory store;
//   - the same suite, expectation for expectation, on the Redis store: a real redis-server
//     (/usr/bin/redis-server, or FLOODGATE_REDIS_SERVER) that the suite starts on a free loopback
//     port and stops by its PID; skipped with a message when redis-server is not installed;
//   - envoyproxy/ratelimit's README examples: its own config files
//     (tests/data/envoy-ratelimit-configs/main/readme-example*.yaml, copied into a temp directory)
//     and the behaviour the README describes for each, on the memory store.
//
// Each suite writes its config into a temporary directory, starts the floodgate binary on free
// loopback ports it picks itself, calls it over real gRPC, and stops the processes it started (by
// their PIDs) in its `after` hook. Every call carries a deadline and every test a timeout.
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
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import { exited, freePort, spawnChild, stopChild } from './children.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = path.resolve(process.env.FLOODGATE_SOURCE_DIR || path.join(here, '..', '..'));
const BINARY = path.resolve(
  process.env.FLOODGATE_BINARY || path.join(SOURCE_DIR, 'build', 'release', 'src', 'floodgate'));

const READY_TIMEOUT_MS = 15_000;
const CALL_DEADLINE_MS = 5_000;
const TEST_TIMEOUT_MS = 60_000;  // room for one wait past a window's edge (clearOfWindowEdge)
const MAX_UINT32 = 4294967295;
const DAY_S = 86400;
const HOUR_S = 3600;
const MINUTE_S = 60;
const SECOND_S = 1;
const DOMAIN = 'node-client';
const RLS_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';
const REDIS_SERVER = process.env.FLOODGATE_REDIS_SERVER || '/usr/bin/redis-server';
const REDIS_READY_TIMEOUT_MS = 10_000;
// The Redis store's answer may take a while on a busy machine: wait up to 1 s for it rather than
// answering per --failure-mode (fail_open), which would break every count below.
const REDIS_STORE_TIMEOUT_MS = 1000;
const ENVOY_CONFIGS = path.join(SOURCE_DIR, 'tests', 'data', 'envoy-ratelimit-configs');

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
    metadata: {team: payments, tier: {level: gold}}
    rate_limit:
      name: per_client
      unit: hour
      requests_per_unit: 4
  - key: vip
    metadata: {team: vip, tier: {support: priority}}
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

// plain(): a google.protobuf.Struct (or Value) as proto-loader decodes it, as plain JSON.
function plain(struct) {
  const value = (v) => {
    switch (v.kind) {
      case 'structValue': return plain(v.structValue);
      case 'listValue': return (v.listValue.values || []).map(value);
      case 'nullValue': return null;
      default: return v[v.kind];
    }
  };
  return Object.fromEntries(Object.entries(struct.fields || {}).map(([k, v]) => [k, value(v)]));
}

// startFloodgate(): the binary on two free ports, ready (gRPC listening line logged and GET
// /health 200) within READY_TIMEOUT_MS; up to 3 tries when a port was taken in between.
// `extraArgs` select the store (--backend redis ...).
async function startFloodgate(configDir, extraArgs = []) {
  let lastError;
  for (let attempt = 1; attempt <= 3; ++attempt) {
    const httpPort = await freePort();
    let grpcPort = await freePort();
    while (grpcPort === httpPort) grpcPort = await freePort();
    const args = ['serve', '--host', '127.0.0.1', '--port', String(httpPort),
                  '--grpc-port', String(grpcPort), '--admin-port', '-1', '--rls-config', configDir,
                  '--log-format', 'text', '--limit-response-headers', 'true',
                  '--response-dynamic-metadata', 'true', ...extraArgs];
    const server = Object.assign(spawnChild(BINARY, args), { httpPort, grpcPort });
    const { child } = server;

    const readyLine = `Envoy rate limit service (gRPC) listening on 127.0.0.1:${grpcPort}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    while (Date.now() < deadline && !server.spawnError && !exited(child)) {
      if (server.output.includes(readyLine) && await httpHealthOk(httpPort)) {
        ready = true;
        break;
      }
      await sleep(50);
    }
    if (ready) return server;
    if (server.spawnError) throw new Error(`cannot start ${BINARY}: ${server.spawnError.message}`);
    lastError = new Error(
      `floodgate was not ready within ${READY_TIMEOUT_MS} ms (attempt ${attempt}, ` +
      `exit ${child.exitCode}, signal ${child.signalCode}); its output:\n${server.output}`);
    await stopChild(server);
    // A taken port makes the binary exit at once; anything else will not get better by retrying.
    if (!/cannot listen|address already in use|bind/i.test(server.output)) break;
  }
  throw lastError;
}

const stopFloodgate = stopChild;

// Why the Redis suite cannot run here, or null when it can.
function redisUnavailable() {
  try {
    fs.accessSync(REDIS_SERVER, fs.constants.X_OK);
    return null;
  } catch {
    return `redis-server is not installed (no executable ${REDIS_SERVER}; Debian: ` +
           'apt-get install redis-server, or point FLOODGATE_REDIS_SERVER at one)';
  }
}

// redisAnswersPing(): an inline PING over a raw TCP socket answered "+PONG" within `ms`.
function redisAnswersPing(port, ms) {
  return new Promise((resolve) => {
    let reply = '';
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

// startRedis(): redis-server on a free loopback port, without persistence, its files in `dir`,
// answering PING within REDIS_READY_TIMEOUT_MS; up to 3 tries when the port was taken meanwhile.
async function startRedis(dir) {
  let lastError;
  for (let attempt = 1; attempt <= 3; ++attempt) {
    const port = await freePort();
    const redis = Object.assign(
      spawnChild(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
                                '--appendonly', 'no', '--dir', dir, '--daemonize', 'no']),
      { port });
    const deadline = Date.now() + REDIS_READY_TIMEOUT_MS;
    while (Date.now() < deadline && !redis.spawnError && !exited(redis.child)) {
      if (await redisAnswersPing(port, 1000)) return redis;
      await sleep(50);
    }
    if (redis.spawnError) {
      throw new Error(`cannot start ${REDIS_SERVER}: ${redis.spawnError.message}`);
    }
    lastError = new Error(
      `redis-server did not answer PING on 127.0.0.1:${port} within ${REDIS_READY_TIMEOUT_MS} ms ` +
      `(attempt ${attempt}, exit ${redis.child.exitCode}, signal ${redis.child.signalCode}); ` +
      `its output:\n${redis.output}`);
    await stopChild(redis);
    if (!/address already in use|could not create server tcp listening socket/i.test(redis.output)) {
      break;
    }
  }
  throw lastError;
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

// rlsSuite(): the client suite on one store, `memory` or `redis`. Every expectation is the same on
// both: the stores are meant to answer identically.
function rlsSuite(store) {
  const skip = (store === 'redis' && redisUnavailable()) || false;  // node:test skips on null too
  describe(`floodgate Envoy RLS over gRPC, from a Node.js client (${store} store)`, { skip }, () => {
    let workDir;
    let redis;
    let server;
    let rls;
    let health;
    // Values no other run's and no other suite's counters share.
    const unique = `${store}-${process.pid}-${Date.now()}`;
    const call = (request) => unary(rls, 'ShouldRateLimit', request);

    before(async () => {
      assert.ok(fs.existsSync(BINARY), `no floodgate binary at ${BINARY} (FLOODGATE_BINARY)`);
      workDir = fs.mkdtempSync(path.join(os.tmpdir(), `floodgate-node-rls-${store}-`));
      // Nested two levels below the directory floodgate is given: it reads *.yaml recursively.
      const configDir = path.join(workDir, 'rls');
      fs.mkdirSync(path.join(configDir, 'domains', 'node'), { recursive: true });
      fs.writeFileSync(path.join(configDir, 'domains', 'node', 'node-client.yaml'), CONFIG_YAML);

      let storeArgs = [];
      if (store === 'redis') {
        const redisDir = path.join(workDir, 'redis');
        fs.mkdirSync(redisDir);
        redis = await startRedis(redisDir);
        storeArgs = ['--backend', 'redis', '--redis-url', `redis://127.0.0.1:${redis.port}`,
                     '--store-timeout-ms', String(REDIS_STORE_TIMEOUT_MS)];
      }

      const proto = loadProtos();
      server = await startFloodgate(configDir, storeArgs);
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
          console.error(`floodgate output (${store} store; exit ${server.child.exitCode}, signal ` +
                        `${server.child.signalCode}):\n${server.output.slice(-8000)}`);
        }
      }
      if (redis) {
        const diedEarly = exited(redis.child);
        await stopChild(redis);
        if (diedEarly || process.env.FLOODGATE_TEST_VERBOSE) {
          console.error(`redis-server output (exit ${redis.child.exitCode}, signal ` +
                        `${redis.child.signalCode}):\n${redis.output.slice(-8000)}`);
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

    test('dynamic_metadata (RESPONSE_DYNAMIC_METADATA): the request, and the metadata of the limits that passed', { timeout: TEST_TIMEOUT_MS }, async () => {
      await clearOfWindowEdge(HOUR_S, 30);
      const client = desc([['client', `md-${unique}`]]);
      const first = await call({ domain: DOMAIN, descriptors: [client], hitsAddend: 2 });
      assert.deepEqual(plain(first.dynamicMetadata), {
        domain: DOMAIN,
        descriptors: [{ entries: [`client=md-${unique}`] }],
        hitsAddend: 2,
        metadata: { team: 'payments', tier: { level: 'gold' } },
      });
      // vip replaces per_client: the metadata is vip's alone.
      const both = await call({ domain: DOMAIN,
                                descriptors: [desc([['vip', `md-${unique}`]]), client] });
      assert.deepEqual(plain(both.dynamicMetadata).metadata,
                       { team: 'vip', tier: { support: 'priority' } });
      // Over its limit (2 + 2 of 4 used): its metadata is left out.
      const over = await call({ domain: DOMAIN, descriptors: [client], hitsAddend: 3 });
      assert.equal(over.overallCode, 'OVER_LIMIT');
      assert.equal(plain(over.dynamicMetadata).metadata, undefined);
    });

    test('the server is still up and healthy after all of the above', { timeout: TEST_TIMEOUT_MS }, async () => {
      assert.equal(exited(server.child), false,
                   `floodgate exited (code ${server.child.exitCode}, signal ${server.child.signalCode})`);
      assert.equal(await httpHealthOk(server.httpPort), true);
      // envoyproxy/ratelimit's probe path answers as it does.
      const probe = await fetch(`http://127.0.0.1:${server.httpPort}/healthcheck`,
                                { signal: AbortSignal.timeout(5000) });
      assert.equal(probe.status, 200);
      assert.equal(await probe.text(), 'OK');
      const res = await unary(health, 'Check', { service: RLS_SERVICE });
      assert.equal(res.status, 'SERVING');
      if (store === 'redis') {
        // Redis made every decision above: no store error (a timeout would have been answered
        // fail_open), and its latency histogram counted its round trips (one per batch).
        const res = await fetch(`http://127.0.0.1:${server.httpPort}/metrics`,
                                { signal: AbortSignal.timeout(5000) });
        const text = await res.text();
        const errors = text.split('\n')
          .filter((l) => l.startsWith('floodgate_store_errors_total{'));
        assert.ok(errors.length > 0, 'no floodgate_store_errors_total in /metrics');
        for (const line of errors) assert.match(line, / 0$/, line);
        const count = /^floodgate_store_latency_seconds_count\{store="redis"\} (\d+)$/m.exec(text);
        assert.ok(count && Number(count[1]) > 0, `Redis round trips: ${count?.[1]}`);
      }
    });
  });
}

rlsSuite('memory');
rlsSuite('redis');

// ---- envoyproxy/ratelimit's README examples ---------------------------------------------------

// inOneWindow(): runs `body(attempt)` so that all its calls fall in one fixed window of
// `unitSeconds` (aligned to the Unix epoch, as the server counts): it starts with at least
// `marginSeconds` left in the window and, should the window end during the body anyway (a busy
// machine), waits for the next window and runs the body again (its counts in the broken window
// are then stale: the next window starts from nothing). The body's assertion failures count only
// when the whole body ran in one window.
async function inOneWindow(unitSeconds, marginSeconds, body, attempts = 4) {
  const untilNextWindow = () =>
    sleep(Math.ceil((unitSeconds - ((Date.now() / 1000) % unitSeconds) + 0.02) * 1000));
  if (unitSeconds - ((Date.now() / 1000) % unitSeconds) < marginSeconds) await untilNextWindow();
  for (let attempt = 1; ; ++attempt) {
    const windowIndex = Math.floor(Date.now() / 1000 / unitSeconds);
    let failure = null;
    try {
      await body(attempt);
    } catch (e) {
      failure = e;
    }
    if (Math.floor(Date.now() / 1000 / unitSeconds) === windowIndex) {
      if (failure) throw failure;
      return;
    }
    if (attempt === attempts) {
      throw new Error(`${attempts} attempts could not fit in one ${unitSeconds} s window` +
                      (failure ? `; the last failed with: ${failure.message}` : ''));
    }
    await untilNextWindow();
  }
}

function limit(requestsPerUnit, unit, name = '') {
  return { requestsPerUnit, unit, name };
}

describe('envoyproxy/ratelimit README examples, its own config files (memory store)', () => {
  // The README's examples, each file with its own domain: messaging (2), edge_proxy_per_ip (3),
  // example4 (4, second block), internal (5), example6 .. example9, example10 and
  // example10_wildcard (10), example11 and example11_metrics (11). Example 4's first block (the
  // configuration that does NOT match) has the same domain: a second server serves it alone.
  const EXAMPLE_FILES = [
    'readme-example2.yaml', 'readme-example3.yaml', 'readme-example4.yaml', 'readme-example5.yaml',
    'readme-example6.yaml', 'readme-example7.yaml', 'readme-example8.yaml', 'readme-example9.yaml',
    'readme-example10.yaml', 'readme-example10-wildcard.yaml', 'readme-example11.yaml',
    'readme-example11-metrics.yaml',
  ];
  const NOMATCH_FILE = path.join('example4-nomatch', 'readme-example4-nomatch.yaml');
  let workDir;
  const servers = [];
  let rls;
  let rlsNoMatch;
  const unique = `ex-${process.pid}-${Date.now()}`;
  const call = (request) => unary(rls, 'ShouldRateLimit', request);

  // One request of `descriptors` (each [[key, value], ...]) in `domain`; extra request fields
  // (hitsAddend) in `extra`.
  const ask = (domain, descriptors, extra = {}) =>
    call({ domain, descriptors: descriptors.map((d) => desc(d)), ...extra });

  function assertStatus(status, code, currentLimit, remaining, unitSeconds) {
    assert.equal(status.code, code);
    assert.deepEqual(status.currentLimit, currentLimit);
    assert.equal(status.limitRemaining, remaining);
    assertReset(status, unitSeconds);
  }

  before(async () => {
    assert.ok(fs.existsSync(BINARY), `no floodgate binary at ${BINARY} (FLOODGATE_BINARY)`);
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'floodgate-node-rls-examples-'));
    const configDir = path.join(workDir, 'examples');
    const noMatchDir = path.join(workDir, 'example4-nomatch');
    fs.mkdirSync(configDir);
    fs.mkdirSync(noMatchDir);
    const domains = new Map();
    for (const file of EXAMPLE_FILES) {
      const text = fs.readFileSync(path.join(ENVOY_CONFIGS, 'main', file), 'utf8');
      const domain = /^domain:\s*(\S+)\s*$/m.exec(text)?.[1];
      assert.ok(domain, `${file} has no domain line`);
      assert.ok(!domains.has(domain), `${file} and ${domains.get(domain)} both are ${domain}`);
      domains.set(domain, file);
      fs.writeFileSync(path.join(configDir, file), text);
    }
    fs.copyFileSync(path.join(ENVOY_CONFIGS, NOMATCH_FILE),
                    path.join(noMatchDir, path.basename(NOMATCH_FILE)));

    const proto = loadProtos();
    const credentials = grpc.credentials.createInsecure();
    const Rls = proto.envoy.service.ratelimit.v3.RateLimitService;
    servers.push(await startFloodgate(configDir));
    rls = new Rls(`127.0.0.1:${servers[0].grpcPort}`, credentials);
    servers.push(await startFloodgate(noMatchDir));
    rlsNoMatch = new Rls(`127.0.0.1:${servers[1].grpcPort}`, credentials);
  }, { timeout: 50_000 });

  after(async () => {
    rls?.close();
    rlsNoMatch?.close();
    for (const server of servers) {
      const diedEarly = exited(server.child);
      await stopFloodgate(server);
      if (diedEarly || process.env.FLOODGATE_TEST_VERBOSE) {
        console.error(`floodgate output (examples; exit ${server.child.exitCode}, signal ` +
                      `${server.child.signalCode}):\n${server.output.slice(-8000)}`);
      }
    }
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  }, { timeout: 30_000 });

  test('Example 2 (messaging): marketing to a number 5 a day, any message to a number 100 a day; both counted in one request', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(DAY_S, 20);
    const D = 'messaging';
    const perMarketing = limit(5, 'DAY');
    const perNumber = limit(100, 'DAY');
    const number = `206-${unique}`;
    // The README's request: ("message_type", "marketing"),("to_number", n) and ("to_number", n).
    const request = [[['message_type', 'marketing'], ['to_number', number]],
                     [['to_number', number]]];
    for (let i = 1; i <= 5; ++i) {
      const res = await ask(D, request);
      assert.equal(res.overallCode, 'OK', `request ${i}`);
      assertStatus(res.statuses[0], 'OK', perMarketing, 5 - i, DAY_S);
      assertStatus(res.statuses[1], 'OK', perNumber, 100 - i, DAY_S);
    }
    // The 6th: the marketing limit is over, so the whole answer is (a logical OR); the
    // per-number limit still counts it.
    let res = await ask(D, request);
    assert.equal(res.overallCode, 'OVER_LIMIT');
    assertStatus(res.statuses[0], 'OVER_LIMIT', perMarketing, 0, DAY_S);
    assertStatus(res.statuses[1], 'OK', perNumber, 94, DAY_S);
    // Each number gets its own 5 (and its own 100).
    const other = `206-2-${unique}`;
    res = await ask(D, [[['message_type', 'marketing'], ['to_number', other]],
                        [['to_number', other]]]);
    assert.equal(res.overallCode, 'OK');
    assert.deepEqual(res.statuses.map((s) => s.limitRemaining), [4, 99]);
    // ("message_type", "marketing") alone is a placeholder without a limit; another message type
    // has no nested to_number limit.
    res = await ask(D, [[['message_type', 'marketing']],
                        [['message_type', 'transactional'], ['to_number', number]]]);
    assert.equal(res.overallCode, 'OK');
    res.statuses.forEach(assertNoLimit);
    res = await ask(D, [[['to_number', number]]]);
    assertStatus(res.statuses[0], 'OK', perNumber, 93, DAY_S);
  });

  test('Example 3 (edge_proxy_per_ip): 10 per second per IP; the most specific match blacklists 50.0.0.5 (0 per second)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const D = 'edge_proxy_per_ip';
    const perIp = limit(10, 'SECOND');
    const blacklist = limit(0, 'SECOND');
    await inOneWindow(SECOND_S, 0.6, async (attempt) => {
      const ip = `50.0.${attempt}.1`;
      for (let i = 1; i <= 10; ++i) {
        const res = await ask(D, [[['remote_address', ip]]]);
        assert.equal(res.overallCode, 'OK', `request ${i}`);
        assertStatus(res.statuses[0], 'OK', perIp, 10 - i, SECOND_S);
      }
      const res = await ask(D, [[['remote_address', ip]]]);
      assert.equal(res.overallCode, 'OVER_LIMIT', 'request 11');
      assertStatus(res.statuses[0], 'OVER_LIMIT', perIp, 0, SECOND_S);
    });
    // 50.0.0.5 matches its own key/value before the value-less key: over at the first request,
    // while another IP in the same request is OK.
    for (let i = 0; i < 2; ++i) {
      const res = await ask(D, [[['remote_address', '50.0.0.5']],
                                [['remote_address', `50.9.0.${i}`]]]);
      assert.equal(res.overallCode, 'OVER_LIMIT');
      assertStatus(res.statuses[0], 'OVER_LIMIT', blacklist, 0, SECOND_S);
      assert.equal(res.statuses[1].code, 'OK');
      assert.deepEqual(res.statuses[1].currentLimit, perIp);
    }
  });

  test('Example 4 (example4): a two-entry request matches only the two-level configuration', { timeout: TEST_TIMEOUT_MS }, async () => {
    const D = 'example4';
    const perSubkey = limit(300, 'SECOND');
    // The second block: ("key", "value"),("subkey", any) has 300 per second.
    await inOneWindow(SECOND_S, 0.6, async (attempt) => {
      const d = [['key', 'value'], ['subkey', `subvalue-${attempt}`]];
      let res = await ask(D, [d]);
      assert.equal(res.overallCode, 'OK');
      assertStatus(res.statuses[0], 'OK', perSubkey, 299, SECOND_S);
      res = await ask(D, [d], { hitsAddend: 299 });
      assert.equal(res.overallCode, 'OK');
      assertStatus(res.statuses[0], 'OK', perSubkey, 0, SECOND_S);
      res = await ask(D, [d]);
      assert.equal(res.overallCode, 'OVER_LIMIT', 'request 301');
      assertStatus(res.statuses[0], 'OVER_LIMIT', perSubkey, 0, SECOND_S);
    });
    // One level less, another value, or one level more: no limit.
    const res = await ask(D, [[['key', 'value']], [['key', 'other'], ['subkey', 's']],
                              [['key', 'value'], ['subkey', 's'], ['extra', 'e']]]);
    assert.equal(res.overallCode, 'OK');
    res.statuses.forEach(assertNoLimit);

    // The first block (a limit on ("key", "value") alone, served by the second server): the
    // README's two-entry request does not match it; the one-entry request does.
    const noMatch = await unary(rlsNoMatch, 'ShouldRateLimit', {
      domain: D, descriptors: [desc([['key', 'value'], ['subkey', 'subvalue']])] });
    assert.equal(noMatch.overallCode, 'OK');
    assertNoLimit(noMatch.statuses[0]);
    const match = await unary(rlsNoMatch, 'ShouldRateLimit', {
      domain: D, descriptors: [desc([['key', 'value']])] });
    assert.equal(match.statuses[0].code, 'OK');
    assert.deepEqual(match.statuses[0].currentLimit, limit(300, 'SECOND'));
  });

  test('Example 5 (internal): ldap unlimited (OK, limit_remaining MaxUint32), azure 100 per minute', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(MINUTE_S, 15);
    const D = 'internal';
    const perMinute = limit(100, 'MINUTE');
    const ldap = [['ldap', `l-${unique}`]];
    const azure = [['azure', `a-${unique}`]];
    for (let i = 0; i < 3; ++i) {
      const res = await ask(D, [ldap], { hitsAddend: 1000 });
      assert.equal(res.overallCode, 'OK');
      assert.equal(res.statuses[0].code, 'OK');
      assert.equal(res.statuses[0].limitRemaining, MAX_UINT32);
      assert.equal(res.statuses[0].currentLimit, null);
    }
    let res = await ask(D, [ldap, azure]);
    assert.equal(res.overallCode, 'OK');
    assert.equal(res.statuses[0].limitRemaining, MAX_UINT32);
    assertStatus(res.statuses[1], 'OK', perMinute, 99, MINUTE_S);
    res = await ask(D, [azure], { hitsAddend: 99 });
    assertStatus(res.statuses[0], 'OK', perMinute, 0, MINUTE_S);
    res = await ask(D, [ldap, azure]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 101');
    assert.equal(res.statuses[0].code, 'OK');
    assert.equal(res.statuses[0].limitRemaining, MAX_UINT32);
    assertStatus(res.statuses[1], 'OVER_LIMIT', perMinute, 0, MINUTE_S);
  });

  test('Example 6 (example6): user-a in shadow_mode is never limited; user-b is limited at 20 per second', { timeout: TEST_TIMEOUT_MS }, async () => {
    const D = 'example6';
    const userA = [['service', 'auth-service'], ['user', 'user-a']];
    const userB = [['service', 'auth-service'], ['user', 'user-b']];
    await inOneWindow(SECOND_S, 0.6, async () => {
      // 10 in one go reaches user-a's limit, and every request past it is still OK.
      let res = await ask(D, [userA], { hitsAddend: 10 });
      assertStatus(res.statuses[0], 'OK', limit(10, 'SECOND'), 0, SECOND_S);
      for (let i = 0; i < 3; ++i) {
        res = await ask(D, [userA]);
        assert.equal(res.overallCode, 'OK');
        assertStatus(res.statuses[0], 'OK', limit(10, 'SECOND'), 0, SECOND_S);
      }
      res = await ask(D, [userA], { hitsAddend: 100 });
      assert.equal(res.overallCode, 'OK');
      // user-b: 20, then the 21st is OVER_LIMIT.
      res = await ask(D, [userB], { hitsAddend: 20 });
      assert.equal(res.overallCode, 'OK');
      assertStatus(res.statuses[0], 'OK', limit(20, 'SECOND'), 0, SECOND_S);
      res = await ask(D, [userA, userB]);
      assert.equal(res.overallCode, 'OVER_LIMIT', 'request 21 of user-b');
      assert.deepEqual(res.statuses.map((s) => s.code), ['OK', 'OVER_LIMIT']);
    });
    // Another user of the service: nothing configured.
    const res = await ask(D, [[['service', 'auth-service'], ['user', 'user-c']],
                              [['service', 'x']]]);
    res.statuses.forEach(assertNoLimit);
  });

  test('Example 7 (example7): replaces drops specific_limit when both match, and leaves its count alone', { timeout: TEST_TIMEOUT_MS }, async () => {
    const D = 'example7';
    const specific = limit(5, 'SECOND', 'specific_limit');
    const replacing = limit(10, 'SECOND');
    const one = [['key_1', 'value_1'], ['user', 'bkthomps']];
    const two = [['key_2', 'value_2'], ['user', 'bkthomps']];
    await inOneWindow(SECOND_S, 0.6, async () => {
      // Both: 10 per second, the (key_1, value_1) limit is replaced (no limit, not counted).
      for (let i = 1; i <= 3; ++i) {
        const res = await ask(D, [one, two]);
        assert.equal(res.overallCode, 'OK');
        assertNoLimit(res.statuses[0]);
        assertStatus(res.statuses[1], 'OK', replacing, 10 - i, SECOND_S);
      }
      // (key_1, value_1), (user, bkthomps) alone: its 5 per second, untouched so far.
      for (let i = 1; i <= 5; ++i) {
        const res = await ask(D, [one]);
        assert.equal(res.overallCode, 'OK', `request ${i} of key_1`);
        assertStatus(res.statuses[0], 'OK', specific, 5 - i, SECOND_S);
      }
      let res = await ask(D, [one]);
      assert.equal(res.overallCode, 'OVER_LIMIT', 'request 6 of key_1');
      assertStatus(res.statuses[0], 'OVER_LIMIT', specific, 0, SECOND_S);
      // With both, the exhausted specific_limit does not count: OK, at 10 per second.
      res = await ask(D, [one, two]);
      assert.equal(res.overallCode, 'OK');
      assertNoLimit(res.statuses[0]);
      assertStatus(res.statuses[1], 'OK', replacing, 6, SECOND_S);
      // (key_2, value_2), (user, bkthomps) alone: the same 10-per-second counter.
      res = await ask(D, [two], { hitsAddend: 6 });
      assertStatus(res.statuses[0], 'OK', replacing, 0, SECOND_S);
      res = await ask(D, [one, two]);
      assert.equal(res.overallCode, 'OVER_LIMIT', 'request 11 of key_2');
      assertNoLimit(res.statuses[0]);
      assertStatus(res.statuses[1], 'OVER_LIMIT', replacing, 0, SECOND_S);
    });
  });

  test('Example 8 (example8): key1 with any value 10 per minute (each value apart), key1=value1 20 per minute', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(MINUTE_S, 15);
    const D = 'example8';
    const perValue = limit(10, 'MINUTE');
    const value1 = limit(20, 'MINUTE');
    const u1 = [['key1', `unspecified_value-${unique}`]];
    const u2 = [['key1', `unspecified_value2-${unique}`]];
    let res = await ask(D, [u1, u2, [['key1', 'value1']]]);
    assert.equal(res.overallCode, 'OK');
    assertStatus(res.statuses[0], 'OK', perValue, 9, MINUTE_S);
    assertStatus(res.statuses[1], 'OK', perValue, 9, MINUTE_S);
    assertStatus(res.statuses[2], 'OK', value1, 19, MINUTE_S);
    for (let i = 2; i <= 10; ++i) {
      res = await ask(D, [u1]);
      assert.equal(res.overallCode, 'OK', `request ${i}`);
      assertStatus(res.statuses[0], 'OK', perValue, 10 - i, MINUTE_S);
    }
    res = await ask(D, [u1, u2]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 11');
    assertStatus(res.statuses[0], 'OVER_LIMIT', perValue, 0, MINUTE_S);
    assertStatus(res.statuses[1], 'OK', perValue, 8, MINUTE_S);
    res = await ask(D, [[['key1', 'value1']]], { hitsAddend: 19 });
    assertStatus(res.statuses[0], 'OK', value1, 0, MINUTE_S);
    res = await ask(D, [[['key1', 'value1']]]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 21 of value1');
    assertStatus(res.statuses[0], 'OVER_LIMIT', value1, 0, MINUTE_S);
  });

  test('Example 9 (example9): trailing, middle and multiple * wildcards, each matched value counted apart', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(MINUTE_S, 15);
    const D = 'example9';
    const perMinute = limit(20, 'MINUTE');
    const u = unique;
    const matching = [
      [['key1', `value1-${u}`]], [['key1', `value2-${u}`]], [['key1', `valueXYZ-${u}`]],
      [['path', `/api/123-${u}/action`]], [['path', `/api/user-id-${u}/action`]],
      [['route', `/api/v1-${u}/resource/123/action`]],
      [['route', `/api/v2-${u}/resource/456/action`]],
    ];
    let res = await ask(D, matching);
    assert.equal(res.overallCode, 'OK');
    res.statuses.forEach((s, i) => {
      assert.deepEqual(s.currentLimit, perMinute, `descriptor ${i}`);
      assert.equal(s.limitRemaining, 19, `descriptor ${i}`);
    });
    const notMatching = [
      [['key1', `xvalue1-${u}`]], [['key1', `Value1-${u}`]],
      [['path', `/api/123-${u}/other`]], [['path', `/v2/api/123-${u}/action`]],
      [['route', `/api/v1-${u}/resource/123/other`]], [['route', `/api/v1-${u}/other/123/action`]],
    ];
    res = await ask(D, notMatching);
    assert.equal(res.overallCode, 'OK');
    res.statuses.forEach(assertNoLimit);
    // The 21st request of one matched value is OVER_LIMIT; another value of the same pattern is
    // not.
    res = await ask(D, [matching[3]], { hitsAddend: 19 });
    assertStatus(res.statuses[0], 'OK', perMinute, 0, MINUTE_S);
    res = await ask(D, [matching[3], matching[4]]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 21');
    assertStatus(res.statuses[0], 'OVER_LIMIT', perMinute, 0, MINUTE_S);
    assertStatus(res.statuses[1], 'OK', perMinute, 18, MINUTE_S);
  });

  test('Example 10 (example10, example10_wildcard): value_to_metric changes no counting; every value counted apart', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(MINUTE_S, 15);
    const perSubject = limit(60, 'MINUTE');
    const api = [['route', 'api'], ['http_method', 'GET'], ['subject_id', `123-${unique}`]];
    const web = [['route', 'web'], ['http_method', 'POST'], ['subject_id', `456-${unique}`]];
    const webSame = [['route', 'web'], ['http_method', 'GET'], ['subject_id', `123-${unique}`]];
    let res = await ask('example10', [api, web, webSame]);
    assert.equal(res.overallCode, 'OK');
    res.statuses.forEach((s) => assertStatus(s, 'OK', perSubject, 59, MINUTE_S));
    res = await ask('example10', [api], { hitsAddend: 59 });
    assertStatus(res.statuses[0], 'OK', perSubject, 0, MINUTE_S);
    res = await ask('example10', [api, web]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 61');
    assertStatus(res.statuses[0], 'OVER_LIMIT', perSubject, 0, MINUTE_S);
    assertStatus(res.statuses[1], 'OK', perSubject, 58, MINUTE_S);
    res = await ask('example10', [[['route', 'api'], ['http_method', 'GET']]]);
    assertNoLimit(res.statuses[0]);

    const perResource = limit(100, 'MINUTE');
    const alice = (action) =>
      [['user', `alice-${unique}`], ['action', action], ['resource', 'documents']];
    res = await ask('example10_wildcard', [alice('readfile'), alice('readdir'), alice('read')]);
    assert.equal(res.overallCode, 'OK');
    res.statuses.forEach((s) => assertStatus(s, 'OK', perResource, 99, MINUTE_S));
    res = await ask('example10_wildcard', [alice('write'), alice('Readfile')]);
    res.statuses.forEach(assertNoLimit);
    res = await ask('example10_wildcard', [alice('readfile')], { hitsAddend: 99 });
    assertStatus(res.statuses[0], 'OK', perResource, 0, MINUTE_S);
    res = await ask('example10_wildcard', [alice('readfile'), alice('readdir')]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 101');
    assert.deepEqual(res.statuses.map((s) => [s.code, s.limitRemaining]),
                     [['OVER_LIMIT', 0], ['OK', 98]]);
  });

  test('Example 11 (example11): files/* share one threshold of 10 per hour; files_no_share/* each have their own', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(HOUR_S, 20);
    const D = 'example11';
    const perHour = limit(10, 'HOUR');
    // The README's case: 5 for files/a.pdf and 5 for files/b.csv, then files/c.txt is limited.
    for (let i = 1; i <= 10; ++i) {
      const res = await ask(D, [[['files', i <= 5 ? 'files/a.pdf' : 'files/b.csv']]]);
      assert.equal(res.overallCode, 'OK', `request ${i}`);
      assertStatus(res.statuses[0], 'OK', perHour, 10 - i, HOUR_S);
    }
    let res = await ask(D, [[['files', 'files/c.txt']]]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'files/c.txt');
    assertStatus(res.statuses[0], 'OVER_LIMIT', perHour, 0, HOUR_S);
    // 10 for files_no_share/a.pdf exhaust it; files_no_share/b.csv still has its 10.
    for (let i = 1; i <= 10; ++i) {
      res = await ask(D, [[['files_no_share', 'files_no_share/a.pdf']]]);
      assert.equal(res.overallCode, 'OK', `request ${i} of files_no_share/a.pdf`);
      assertStatus(res.statuses[0], 'OK', perHour, 10 - i, HOUR_S);
    }
    res = await ask(D, [[['files_no_share', 'files_no_share/a.pdf']],
                        [['files_no_share', 'files_no_share/b.csv']]]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 11 of files_no_share/a.pdf');
    assertStatus(res.statuses[0], 'OVER_LIMIT', perHour, 0, HOUR_S);
    assertStatus(res.statuses[1], 'OK', perHour, 9, HOUR_S);
    // Outside the patterns: no limit.
    res = await ask(D, [[['files', 'other/a.pdf']], [['files_no_share', 'files/a.pdf']]]);
    res.statuses.forEach(assertNoLimit);
  });

  test('Example 11 (example11_metrics): api/* routes share a threshold per method, 60 per minute', { timeout: TEST_TIMEOUT_MS }, async () => {
    await clearOfWindowEdge(MINUTE_S, 15);
    const D = 'example11_metrics';
    const perMinute = limit(60, 'MINUTE');
    const method = `GET-${unique}`;
    const route = (r, m = method) => [['route', r], ['method', m]];
    let res = await ask(D, [route('api/v1')]);
    assertStatus(res.statuses[0], 'OK', perMinute, 59, MINUTE_S);
    // api/v2 with the same method shares the counter; another method has its own.
    res = await ask(D, [route('api/v2'), route('api/v1', `POST-${unique}`)]);
    assertStatus(res.statuses[0], 'OK', perMinute, 58, MINUTE_S);
    assertStatus(res.statuses[1], 'OK', perMinute, 59, MINUTE_S);
    res = await ask(D, [route('api/v3')], { hitsAddend: 58 });
    assertStatus(res.statuses[0], 'OK', perMinute, 0, MINUTE_S);
    res = await ask(D, [route('api/')]);
    assert.equal(res.overallCode, 'OVER_LIMIT', 'request 61');
    assertStatus(res.statuses[0], 'OVER_LIMIT', perMinute, 0, MINUTE_S);
    res = await ask(D, [route('web/v1'), [['route', 'api/v1']]]);
    res.statuses.forEach(assertNoLimit);
  });

  test('both example servers are still up', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const server of servers) {
      assert.equal(exited(server.child), false,
                   `floodgate exited (code ${server.child.exitCode}, signal ${server.child.signalCode})`);
      assert.equal(await httpHealthOk(server.httpPort), true);
    }
  });
});
