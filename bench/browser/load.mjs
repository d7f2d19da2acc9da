// One measured visit for bench/browser.py: a fresh headless Chromium
// profile opens JupyterLab at `url` (empty cache), then reloads it (warm
// cache). Each load ends when a notebook is open and its kernel idle.
// Prints one JSON line per load: {"load": "cold"|"warm", "shell_ms",
// "idle_ms", "requests", "bytes", "websockets", "protocols"} (responses
// from the network by protocol, e.g. {"h2": 46}).
//
// shell_ms: from the navigation's start until JupyterLab's shell is on
// screen (the splash gone), checked every animation frame; idle_ms: until
// the notebook's kernel is connected and idle; requests and bytes: what
// went over the network for the load (cache hits excluded; bytes as
// transferred, headers included), counted until no request has been in
// flight for QUIET_MS after the kernel was idle.
//
// Usage: node load.mjs '{"chromium": PATH, "spki": PIN, "url": URL,
//   "notebook": "bench.ipynb"}'
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const TIMEOUT_MS = 60_000;
const QUIET_MS = 500;

const SHELL_SHOWN = () => {
  const shell = document.querySelector('.jp-LabShell');
  const shown = shell && !document.getElementById('jupyterlab-splash') &&
    shell.getBoundingClientRect().height > 0;
  return shown ? performance.now() : false;
};

const KERNEL_IDLE = (path) => {
  const app = window.jupyterapp;
  if (!app) return false;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) {
      const session = widget.sessionContext.session;
      const kernel = session && session.kernel;
      const idle = kernel && kernel.connectionStatus === 'connected' &&
        widget.sessionContext.kernelDisplayStatus === 'idle';
      return idle ? performance.now() : false;
    }
  }
  return false;
};

// Every kernel session on the server ends, through the page (JupyterLab's
// own client, its cookies and XSRF token), so that the next load starts a
// kernel again.
const endKernelSessions = (page) =>
  page.evaluate(() => window.jupyterapp.serviceManager.sessions.shutdownAll());

async function measure(page, cdp, name, navigate) {
  const net = { requests: 0, cached: 0, bytes: 0, websockets: 0, protocols: {}, inflight: new Map() };
  let last = Date.now();
  // Only the new document's requests count: the old one's last requests
  // (a reload cancels them) may never report an end.
  let loader = null;
  const ours = new Set();
  const listeners = {
    'Network.requestWillBeSent': (e) => {
      if (loader === null && e.type === 'Document') loader = e.loaderId;
      if (e.loaderId !== loader || e.request.url.startsWith('data:')) return;
      if (ours.has(e.requestId)) return; // a redirect: the same request goes on
      ours.add(e.requestId);
      net.requests += 1;
      net.inflight.set(e.requestId, e.request.url);
      last = Date.now();
    },
    'Network.requestServedFromCache': (e) => { if (ours.has(e.requestId)) net.cached += 1; },
    'Network.responseReceived': (e) => {
      const r = e.response;
      if (!ours.has(e.requestId) || r.fromDiskCache || r.fromPrefetchCache) return;
      net.protocols[r.protocol] = (net.protocols[r.protocol] || 0) + 1;
    },
    'Network.loadingFinished': (e) => {
      if (!ours.has(e.requestId)) return;
      net.bytes += e.encodedDataLength;
      net.inflight.delete(e.requestId);
      last = Date.now();
    },
    'Network.loadingFailed': (e) => { net.inflight.delete(e.requestId); last = Date.now(); },
    'Network.webSocketCreated': () => { net.websockets += 1; },
  };
  for (const [event, f] of Object.entries(listeners)) cdp.on(event, f);
  await navigate();
  const shell = await page.waitForFunction(SHELL_SHOWN, null, { polling: 'raf', timeout: TIMEOUT_MS });
  const shellMs = await shell.jsonValue();
  // The notebook opens as soon as the shell shows (a no-op when the
  // workspace restored it already).
  await page.evaluate((path) => window.jupyterapp.commands.execute('docmanager:open', { path }),
    config.notebook);
  const idle = await page.waitForFunction(KERNEL_IDLE, config.notebook,
    { polling: 'raf', timeout: TIMEOUT_MS });
  const idleMs = await idle.jsonValue();
  const deadline = Date.now() + TIMEOUT_MS;
  while (net.inflight.size > 0 || Date.now() - last < QUIET_MS) {
    if (Date.now() > deadline) throw new Error(`${name}: requests still in flight: ${[...net.inflight.values()].join(' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const [event, f] of Object.entries(listeners)) cdp.off(event, f);
  return {
    load: name,
    shell_ms: Math.round(shellMs),
    idle_ms: Math.round(idleMs),
    requests: net.requests - net.cached,
    bytes: net.bytes,
    websockets: net.websockets,
    protocols: net.protocols,
  };
}

const profile = mkdtempSync(join(tmpdir(), 'jrps-bench-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: config.chromium,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--no-proxy-server',
    '--host-resolver-rules=MAP * 127.0.0.1',
    // Trusts the benchmark's certificate by its key alone. A certificate
    // error would also work, but Chromium does not cache what it fetched
    // over one, and the warm load would then measure nothing.
    `--ignore-certificate-errors-spki-list=${config.spki}`,
  ],
});
try {
  const page = context.pages()[0] || await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  console.log(JSON.stringify(await measure(page, cdp, 'cold',
    () => page.goto(config.url, { waitUntil: 'commit', timeout: TIMEOUT_MS }))));
  await endKernelSessions(page);
  console.log(JSON.stringify(await measure(page, cdp, 'warm',
    () => page.reload({ waitUntil: 'commit', timeout: TIMEOUT_MS }))));
  await endKernelSessions(page);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
