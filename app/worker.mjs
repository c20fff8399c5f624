// The module worker: boots Pyodide, unpacks the `doppler` package and its assets (kernels, rules), then hands every
// request to Python (`doppler.api`). All GPU work lives here. Messages in: {id, call, args} (an api entry point) and
// {id, python} (run Python source, for tests). Messages out: {type: 'boot'|'ready'|'fatal'|'event'|'reply', ...}.
import { loadPyodide } from '../pyodide/pyodide.mjs';
import * as helpers from './helpers.mjs';
import * as shards from './shards.mjs';

const site = new URL('../', import.meta.url);
const LIB = '/home/pyodide/lib';
let api = null;

function fatal(code, message, hint) {
  self.postMessage({ type: 'fatal', code, message, hint });
}

async function boot() {
  const t0 = performance.now();
  if (!self.isSecureContext) {
    return fatal('insecure-context', 'This page is not a secure context, so the browser hides WebGPU and storage.',
      'Open it over https, or from http://localhost / http://127.0.0.1 on this machine.');
  }
  if (!('gpu' in navigator)) {
    return fatal('no-webgpu', 'This browser offers no WebGPU (navigator.gpu is missing).',
      'Use a recent Chrome, Edge or another WebGPU browser; on Linux start Chromium with --enable-unsafe-webgpu.');
  }
  // Ask once before the ~10 s Pyodide boot, so a machine without a usable GPU hears it at once.
  if (!(await navigator.gpu.requestAdapter())) {
    return fatal('no-adapter', 'WebGPU found no GPU adapter (the GPU or its driver is blocklisted, or WebGPU is off).',
      'Check chrome://gpu; on Linux start Chromium with --enable-unsafe-webgpu (and Vulkan drivers installed).');
  }
  let py;
  try {
    self.postMessage({ type: 'boot', stage: 'pyodide' });
    py = await loadPyodide({ indexURL: new URL('pyodide/', site).href });
    const zip = await fetch(new URL('doppler.zip', site));
    if (!zip.ok) throw new Error(`doppler.zip: HTTP ${zip.status}`);
    py.unpackArchive(await zip.arrayBuffer(), 'zip', { extractDir: LIB });
    py.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(LIB)})`);
  } catch (e) {
    return fatal('pyodide', `Python (Pyodide) did not start: ${e.message || e}`,
      'Reload the page; if it persists, run `make serve` again (it installs Pyodide from npm).');
  }
  self.postMessage({ type: 'boot', stage: 'gpu' });
  try {
    py.registerJsModule('doppler_js', helpers);
    py.registerJsModule('doppler_shards', shards);
    api = py.pyimport('doppler.api');
    const info = await api.start(`${LIB}/assets`, site.href, (name, data) => self.postMessage({ type: 'event', name, data: JSON.parse(data) }));
    self.postMessage({ type: 'ready', info: JSON.parse(info), bootMs: performance.now() - t0 });
  } catch (e) {
    const msg = (e && e.message) || String(e);
    const known = /DopplerError: ([\s\S]*)$/m.exec(msg);
    fatal('gpu', known ? known[1].trim() : msg, 'Check chrome://gpu; WebGPU needs a supported GPU and driver.');
  }
}

const booted = boot();

self.onmessage = async (event) => {
  const { id, call, args, python, preview } = event.data;
  await booted;
  try {
    if (!api) throw new Error('Doppler did not start (see the message above).');
    let text;
    if (preview !== undefined) text = api.attach_preview(preview);
    else if (python !== undefined) text = await api.run_python(python);
    else text = await api.handle(call, JSON.stringify(args ?? {}));
    self.postMessage({ type: 'reply', id, ok: true, result: JSON.parse(text) });
  } catch (e) {
    self.postMessage({ type: 'reply', id, ok: false, error: (e && e.message) || String(e) });
  }
};
