// The UI thread's handle on the worker: boot state, request/reply by id, and event listeners.
export class DopplerClient {
  constructor(workerUrl = new URL('./worker.mjs', import.meta.url)) {
    this.worker = new Worker(workerUrl, { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.listeners = new Map();
    this.ready = new Promise((resolve, reject) => { this._ready = resolve; this._failed = reject; });
    this.worker.onmessage = (e) => this._receive(e.data);
    this.worker.onerror = (e) => this._failed({ code: 'worker', message: `The worker failed: ${e.message}`,
      hint: 'Reload the page. Module workers need a current browser.' });
  }

  _receive(msg) {
    if (msg.type === 'ready') this._ready(msg);
    else if (msg.type === 'fatal') this._failed(msg);
    else if (msg.type === 'reply') {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      msg.ok ? p.resolve(msg.result) : p.reject(new Error(msg.error));
    }
    for (const fn of this.listeners.get(msg.type === 'event' ? msg.name : msg.type) ?? []) fn(msg.data ?? msg);
  }

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, []);
    this.listeners.get(name).push(fn);
  }

  _send(body) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...body });
    });
  }

  call(name, args = {}) { return this._send({ call: name, args }); }

  // Hands an OffscreenCanvas to the worker: the GPU draws the latent preview into it, with no readback.
  attachPreview(canvas) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, preview: canvas }, [canvas]);
    });
  }

  // Runs Python source in the worker (tests and diagnostics); the value of the last expression comes back as JSON.
  python(source) { return this._send({ python: source }); }
}
