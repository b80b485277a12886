// Starts the real hub binary for a test file, and talks to it over HTTP.
//
// Env: HUB_BIN (default ../../target/release/hub). With E2E_STATIC_FROM_DISK=1 the pages
// are served from static/ on disk through a small proxy (same CSP), so the UI can be
// iterated on without rebuilding the binary; CI never sets it.

import { spawn } from 'node:child_process';
import { afterEach } from 'node:test';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
export const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

/**
 * Starts the hub. opts.port: fixed port (0 = any); opts.dataDir: reuse a data dir.
 * Returns {url, port, dataDir, stop(), kill()}.
 */
export async function startHub(opts = {}) {
  const bin = process.env.HUB_BIN || path.join(ROOT, 'target/release/hub');
  if (!existsSync(bin)) throw new Error(`hub binary not found at ${bin}: run cargo build --release first`);
  const dataDir = opts.dataDir || mkdtempSync(path.join(tmpdir(), 'hub-e2e-'));
  const proc = spawn(bin, [], {
    env: {
      ...process.env,
      HUB_ADDR: `127.0.0.1:${opts.port || 0}`,
      HUB_DATA: dataDir,
      HUB_ADMIN_TOKEN: ADMIN_TOKEN,
      HUB_RATE_LIMIT: 'off',
      HUB_PRESENCE_GRACE_MS: '0',
      RUST_LOG: process.env.RUST_LOG || 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 20000) stderr = stderr.slice(-10000);
  });
  const hubUrl = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`hub did not start in time\n${stderr}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code}\n${stderr}`));
    });
  });
  proc.stdout.resume();
  let url = hubUrl;
  let proxy = null;
  if (process.env.E2E_STATIC_FROM_DISK === '1') {
    proxy = await startStaticProxy(hubUrl, opts.proxyPort || 0);
    url = proxy.url;
  }
  const exited = new Promise((r) => proc.once('exit', r));
  return {
    url,
    hubUrl,
    port: Number(new URL(hubUrl).port),
    proxyPort: proxy ? Number(new URL(proxy.url).port) : null,
    dataDir,
    stderr: () => stderr,
    /** Stops the hub (SIGTERM) and removes its data unless keepData. */
    async stop({ keepData = false } = {}) {
      if (proxy) proxy.close();
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      if (!keepData && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    /** kill -9, keeping the data. */
    async kill() {
      if (proxy) proxy.close();
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * After a failed test of the calling file, prints what the hub can tell: the tail of its
 * stderr and its commit figures (a stalled store shows in the commit histogram), so that
 * a failure seen only in CI's log can be read. getHub() returns the file's current hub.
 */
export function reportFailures(getHub) {
  afterEach(async (t) => {
    const hub = getHub();
    if (t.passed !== false || !hub) return;
    let metrics;
    try {
      const res = await fetch(hub.hubUrl + '/metrics', { signal: AbortSignal.timeout(3000) });
      metrics = (await res.text())
        .split('\n')
        .filter((l) => /^hub_(commit_seconds_(bucket|sum|count)|commit_phase_seconds_sum|head_seq|sockets|events_total)/.test(l))
        .join('\n');
    } catch (e) {
      metrics = `(no metrics: ${e.message})`;
    }
    console.error(`--- the hub after the failed test "${t.name}"\nstderr (tail):\n${hub.stderr().slice(-4000)}\nmetrics:\n${metrics}`);
  });
}

/** JSON over HTTP to the hub; throws on non-2xx with .status and .body. */
export async function api(hub, method, p, token, body) {
  const res = await fetch(hub.hubUrl + p, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error(`${method} ${p} → ${res.status} ${text}`);
    err.status = res.status;
    err.body = data;
    throw err;
  }
  return data;
}

export function createAgent(hub, name, role = 'agent') {
  return api(hub, 'POST', '/api/agents', ADMIN_TOKEN, { name, role });
}

// ---------------------------------------------------------------- dev proxy

function readUiTable() {
  const src = readFileSync(path.join(ROOT, 'src/routes/ui.rs'), 'utf8');
  const files = new Map();
  const re = /\(\s*"([^"]+)",\s*"([^"]+)",\s*include_str!\("\.\.\/\.\.\/static\/([^"]+)"\),?\s*\)/g;
  for (const m of src.matchAll(re)) files.set(m[1], { type: m[2], file: path.join(ROOT, 'static', m[3]) });
  const csp = src.match(/pub const CSP: &str = "([^"]+)"/)[1];
  return { files, csp };
}

async function startStaticProxy(hubUrl, port) {
  const target = new URL(hubUrl);
  const server = http.createServer((req, res) => {
    const { files, csp } = readUiTable();
    const p = new URL(req.url, 'http://x').pathname;
    const f = req.method === 'GET' && files.get(p);
    if (f) {
      res.writeHead(200, { 'Content-Type': f.type, 'Content-Security-Policy': csp, 'Cache-Control': 'no-cache' });
      res.end(readFileSync(f.file));
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(Number(target.port), target.hostname, () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${raw}\r\n`);
      if (head && head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
