// UI thread: starts the worker, shows the GPU it found or a clear message when it cannot run, the generation form,
// progress, preview and result. No model logic here: every decision is the worker's (Python).
// Autorun mode: `index.html?autorun=<json {call, args}>&report=<url>` (see autorun.mjs; `bench.html` is the same
// without any text on the page, for headless shells that have no fonts).
import { DopplerClient } from './client.mjs';
import { withTextChunk } from './png.mjs';
import { autorun } from './autorun.mjs';

const $ = (id) => document.getElementById(id);
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function showBanner(message, hint) {
  const banner = $('banner');
  banner.textContent = hint ? `${message}\n${hint}` : message;
  banner.hidden = false;
}

function showGpu(info) {
  $('boot-state').textContent = `Ready: Python ${info.python} on ${info.backend} WebGPU.`;
  const rows = { Vendor: info.adapter.vendor, Architecture: info.adapter.architecture, Description: info.adapter.description,
    Features: info.features.join(', '), 'Max storage binding': mib(info.limits.maxStorageBufferBindingSize) };
  $('gpu-info').replaceChildren(...Object.entries(rows).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v || '(not given)';
    return [dt, dd];
  }));
  $('gpu-limits').textContent = JSON.stringify({ features: info.features, limits: info.limits }, null, 1);
  $('app').hidden = false;
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value; o.textContent = text;
  return o;
}

async function refreshCached(client) {
  const rows = (await client.call('list_models')).map((m) => {
    const tr = document.createElement('tr');
    const del = document.createElement('button');
    del.textContent = 'Delete';
    del.onclick = async () => { await client.call('delete_model', { id: m.id }); refreshCached(client); };
    tr.append(...[m.name, mib(m.bytes)].map((t) => { const td = document.createElement('td'); td.textContent = t; return td; }));
    const td = document.createElement('td'); td.append(del); tr.append(td);
    return tr;
  });
  $('cached').tBodies[0].replaceChildren(...rows);
}

async function selectModel(client) {
  const info = await client.call('model_info', { url: $('model').value });
  $('scheduler').replaceChildren(...info.schedulers.map((s) => option(s, s)));
  const d = info.defaults;
  $('scheduler').value = d.scheduler; $('steps').value = d.steps; $('guidance').value = d.guidance;
  for (const side of ['width', 'height']) {
    const input = $(side);
    input.min = info.limits.minSize; input.max = info.limits.maxSize; input.step = info.limits.sizeMultiple;
    input.value = d[side];
  }
  prepare(client);
}

// A cached model gets ready while the prompt is typed: loaded, its kernels compiled, its first image's weights on
// the GPU (one not cached waits for Generate, which downloads it).
function prepare(client) {
  client.call('prepare', settings()).then((r) => {
    const steps = $('steps-text');
    if (r.preloaded.length && steps.textContent.startsWith('loading')) steps.textContent = 'ready';
  }, (e) => showBanner(e.message));
}

function settings() {
  return { model: $('model').value, prompt: $('prompt').value, negativePrompt: $('negative').value,
    steps: Number($('steps').value), guidance: Number($('guidance').value), scheduler: $('scheduler').value,
    seed: Number($('seed').value), width: Number($('width').value), height: Number($('height').value) };
}

function showResult(result, params) {
  const { width, height, rgba } = result.image;
  const canvas = $('result');
  canvas.width = width; canvas.height = height;
  const bytes = Uint8ClampedArray.from(atob(rgba.__bytes__), (c) => c.charCodeAt(0));
  canvas.getContext('2d').putImageData(new ImageData(bytes, width, height), 0, 0);
  canvas.toBlob(async (blob) => {
    const png = withTextChunk(new Uint8Array(await blob.arrayBuffer()), 'parameters', JSON.stringify(params));
    const link = $('download-png');
    URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
    link.hidden = false;
  }, 'image/png');
  const s = result.stats;
  $('timings').textContent = `text encoder ${s.textEncoderMs} ms · UNet ${s.unetMsPerStep} ms/step · ` +
    `VAE ${s.vaeMs} ms · total ${s.totalMs} ms (${s.cold ? 'cold' : 'warm'}) · peak ${mib(s.peakBytes)}`;
}

function wireEvents(client) {
  client.on('download', (d) => {
    $('download').max = d.totalBytes; $('download').value = d.bytes;
    $('download-text').textContent = `${mib(d.bytes)} of ${mib(d.totalBytes)}` + (d.etaSeconds != null ? ` · ${d.etaSeconds} s left` : '');
  });
  client.on('stage', (d) => {
    const p = d.precompiled;  // the kernels compiled while the model downloaded
    if (p) $('kernels-text').textContent = `· ${p.kernels} kernels compiled in ${(p.ms / 1000).toFixed(1)} s` +
      (p.failed.length ? ` (${p.failed.length} failed: the image will say why)` : '');
  });
  client.on('load', (d) => {
    $('steps-text').textContent = `loading the ${d.component.replace('_', ' ')} weights…`;
  });
  client.on('step', (d) => {
    $('steps-progress').max = d.total; $('steps-progress').value = d.step;
    $('steps-text').textContent = `${d.step} / ${d.total} · ${d.ms} ms`;
  });
}

async function startUi(client) {
  wireEvents(client);
  const models = await client.call('available_models');
  $('model').replaceChildren(...models.map((m) => option(m.url, m.name)));
  $('model').onchange = () => selectModel(client).catch((e) => showBanner(e.message));
  if (models.length) await selectModel(client);
  await refreshCached(client);
  $('random-seed').onclick = () => { $('seed').value = Math.floor(Math.random() * 2 ** 32); };
  const preview = $('preview').transferControlToOffscreen();
  await client.attachPreview(preview);
  $('form').onsubmit = async (event) => {
    event.preventDefault();
    $('banner').hidden = true;
    $('generate').disabled = true; $('cancel').disabled = false;
    const params = settings();
    try {
      showResult(await client.call('generate', params), params);
    } catch (e) {
      showBanner(e.message);
    } finally {
      $('generate').disabled = false; $('cancel').disabled = true;
      refreshCached(client);
    }
  };
  $('cancel').onclick = () => client.call('cancel');
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
  navigator.storage?.persist?.();  // cached models survive storage pressure where the browser allows (page only)
  const client = new DopplerClient();
  window.doppler = client;  // for tests and the console
  client.on('boot', (msg) => { $('boot-state').textContent = msg.stage === 'gpu' ? 'Opening the GPU…' : 'Starting Python…'; });
  const params = new URLSearchParams(location.search);
  client.ready.then((msg) => {
    showGpu(msg.info);
    if (!params.has('autorun')) startUi(client).catch((e) => showBanner(e.message));
  }, (err) => { $('boot-state').textContent = 'Doppler cannot run here.'; showBanner(err.message, err.hint); });
  if (params.has('autorun')) autorun(client, params);
}

main();
