// UI thread: starts the worker, shows the GPU it found or a clear message when it cannot run, and the autorun mode
// (`index.html?autorun=<json {call, args}>&report=<url>`: run one api call headless and POST its JSON result).
import { DopplerClient } from './client.mjs';

const $ = (id) => document.getElementById(id);

function showBanner(message, hint) {
  const banner = $('banner');
  banner.textContent = hint ? `${message}\n${hint}` : message;
  banner.hidden = false;
  $('boot-state').textContent = 'Doppler cannot run here.';
}

function showGpu(info) {
  $('boot-state').textContent = `Ready: Python ${info.python} on ${info.backend} WebGPU.`;
  const dl = $('gpu-info');
  const rows = { Vendor: info.adapter.vendor, Architecture: info.adapter.architecture, Description: info.adapter.description,
    Features: info.features.join(', '), 'Max storage binding': `${(info.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB` };
  dl.replaceChildren(...Object.entries(rows).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v || '(not given)';
    return [dt, dd];
  }));
  $('gpu-limits').textContent = JSON.stringify({ features: info.features, limits: info.limits }, null, 1);
  $('gpu').hidden = false;
}

async function autorun(client, params) {
  const report = params.get('report');
  let result;
  try {
    const job = JSON.parse(params.get('autorun'));
    await client.ready;
    result = { ok: true, result: await client.call(job.call, job.args ?? {}) };
  } catch (e) {
    result = { ok: false, error: e.message || String(e) };
  }
  if (report) await fetch(report, { method: 'POST', body: JSON.stringify(result) });
  document.body.dataset.autorun = 'done';
}

function main() {
  if (!window.isSecureContext) {
    return showBanner('This page is not a secure context, so the browser hides WebGPU and storage.',
      'Open it over https, or from http://localhost / http://127.0.0.1 on this machine.');
  }
  if (!('gpu' in navigator)) {
    return showBanner('This browser offers no WebGPU (navigator.gpu is missing).',
      'Use a recent Chrome, Edge or another WebGPU browser; on Linux start Chromium with --enable-unsafe-webgpu.');
  }
  const client = new DopplerClient();
  window.doppler = client;  // for tests and the console
  client.on('boot', (msg) => { $('boot-state').textContent = msg.stage === 'gpu' ? 'Opening the GPU…' : 'Starting Python…'; });
  client.ready.then((msg) => showGpu(msg.info), (err) => showBanner(err.message, err.hint));
  const params = new URLSearchParams(location.search);
  if (params.has('autorun')) autorun(client, params);
}

main();
