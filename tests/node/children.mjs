// Child processes of the Node test files (tests/node/*.test.mjs): free loopback ports, spawning
// with the output kept, and stopping by PID. Every process started here is killed (SIGKILL, by
// PID) should the Node process exit before the test stopped it.
import { spawn } from 'node:child_process';
import net from 'node:net';

// A port free at the time of asking (the kernel's choice for port 0); the server start retries
// with new ports should another process take it meanwhile.
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

export function waitForExit(child, ms) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

// Every process started here (and passed to track()), until it has exited.
const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    if (!exited(child)) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
});

export function track(child) {
  if (child && child.pid) {
    children.add(child);
    child.once('exit', () => children.delete(child));
  }
}

// spawnChild(): `binary args` with stdout and stderr kept (the last 100-200 kB) in .output of the
// object returned (extend that object, do not copy it: .output grows in place).
export function spawnChild(binary, args, options = {}) {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const proc = { child, output: '', spawnError: null };
  const keep = (chunk) => {
    proc.output += chunk.toString();
    if (proc.output.length > 200_000) proc.output = proc.output.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.once('error', (e) => { proc.spawnError = e; });
  track(child);
  return proc;
}

// stopChild(): SIGTERM to the PID this test started, SIGKILL after 5 s.
export async function stopChild(proc) {
  const { child } = proc;
  if (!child.pid || exited(child)) return;
  try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
  if (await waitForExit(child, 5000)) return;
  try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  await waitForExit(child, 5000);
}
