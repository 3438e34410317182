// A tiny Chrome DevTools Protocol driver (no dependencies: Node >= 20 with --experimental-websocket,
// or Node >= 22). Enough to open pages, run JS in them, wait for conditions and collect console
// errors and CSP violations.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function launchChromium({ binary = process.env.CHROMIUM || 'chromium', headless = true } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'cvco-smoke-'));
  const args = [
    headless ? '--headless' : null, '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-extensions',
    `--user-data-dir=${profile}`, '--remote-debugging-port=0', '--window-size=1280,900', 'about:blank',
  ].filter(Boolean);
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const wsUrl = await new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('chromium did not start')), 20_000);
    child.stderr.on('data', (chunk) => {
      buffer += chunk;
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`chromium exited (${code})`)));
  });
  const httpBase = wsUrl.replace(/^ws:/, 'http:').replace(/\/devtools\/.*$/, '');
  return {
    httpBase,
    async newPage() {
      const response = await fetch(`${httpBase}/json/new?about:blank`, { method: 'PUT' });
      const target = await response.json();
      const page = new Page(target.webSocketDebuggerUrl, target.id, httpBase);
      await page.open();
      return page;
    },
    async close() {
      child.kill('SIGTERM');
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 3000);
        child.on('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      // Chromium's helper processes may still be flushing their cache for a moment.
      try {
        rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
      } catch {
        /* a temporary profile left behind is harmless */
      }
    },
  };
}

export class Page {
  constructor(wsUrl, id, httpBase) {
    this.wsUrl = wsUrl;
    this.id = id;
    this.httpBase = httpBase;
    this.nextId = 1;
    this.pending = new Map();
    this.problems = []; // console errors, exceptions, CSP violations
    this.listeners = new Map();
  }

  async open() {
    this.ws = new WebSocket(this.wsUrl);
    await new Promise((resolve, reject) => {
      this.ws.addEventListener('open', resolve, { once: true });
      this.ws.addEventListener('error', reject, { once: true });
    });
    this.ws.addEventListener('message', (event) => {
      const message = JSON.parse(event.data);
      if (message.id && this.pending.has(message.id)) {
        const { resolve, reject } = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) reject(new Error(`${message.error.message} ${message.error.data || ''}`));
        else resolve(message.result);
      } else if (message.method) {
        this.onEvent(message.method, message.params);
      }
    });
    await this.send('Page.enable');
    await this.send('Runtime.enable');
    await this.send('Log.enable');
    await this.send('Network.enable');
  }

  onEvent(method, params) {
    if (method === 'Runtime.exceptionThrown') {
      this.problems.push(`exception: ${params.exceptionDetails?.exception?.description || params.exceptionDetails?.text}`);
    } else if (method === 'Runtime.consoleAPICalled' && params.type === 'error') {
      this.problems.push(`console.error: ${params.args.map((a) => a.value ?? a.description).join(' ')}`);
    } else if (method === 'Log.entryAdded' && params.entry.level === 'error') {
      this.problems.push(`log: ${params.entry.text} ${params.entry.url || ''}`);
    }
    for (const listener of this.listeners.get(method) || []) listener(params);
  }

  on(method, listener) {
    if (!this.listeners.has(method)) this.listeners.set(method, []);
    this.listeners.get(method).push(listener);
  }

  send(method, params = {}) {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  async goto(url) {
    await this.send('Page.navigate', { url });
    await this.waitFor('document.readyState === "complete"', { timeout: 15_000 });
  }

  /** Evaluates an expression (may be async) in the page and returns its JSON value. */
  async eval(expression) {
    const result = await this.send('Runtime.evaluate', {
      expression: `(async () => (${expression}))()`, awaitPromise: true, returnByValue: true,
    });
    if (result.exceptionDetails) {
      throw new Error(`eval failed: ${result.exceptionDetails.exception?.description || result.exceptionDetails.text}\n  in: ${expression}`);
    }
    return result.result.value;
  }

  async waitFor(expression, { timeout = 10_000, what } = {}) {
    const end = Date.now() + timeout;
    let last;
    while (Date.now() < end) {
      try {
        last = await this.eval(expression);
        if (last) return last;
      } catch (error) {
        last = error.message;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`timed out waiting for ${what || expression} (last: ${JSON.stringify(last)})`);
  }

  async screenshot(path) {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png' });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path, Buffer.from(data, 'base64'));
  }

  async close() {
    try {
      await fetch(`${this.httpBase}/json/close/${this.id}`);
    } catch {
      /* already gone */
    }
    this.ws.close();
  }
}
