// Compiles WGSL modules with Dawn's own compiler (Tint, as Chromium runs it) on Dawn's null backend, which offers
// shader-f16, subgroups and chromium-experimental-subgroup-matrix where no GPU does (SwiftShader and naga lack the
// last), so kernels written for tensor cores are checked without one. Parsing, types, const evaluation and every
// `enable` are checked as Chromium checks them; nothing runs.
//   node tests/tint/compile.mjs MODULES.json
// MODULES.json: [{"label": ..., "code": ...}, ...]. Prints one JSON line a module: {"label", "errors": [...]}.
import { create, globals } from 'webgpu';
import fs from 'node:fs';

Object.assign(globalThis, globals);
const FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'];

const gpu = create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
const adapter = await gpu.requestAdapter();
const missing = adapter ? FEATURES.filter((f) => !adapter.features.has(f)) : FEATURES;
if (missing.length) {
  console.error(`Dawn's null adapter lacks ${missing.join(', ')}: the webgpu package in tests/tint changed`);
  process.exit(2);
}
const device = await adapter.requestDevice({ requiredFeatures: FEATURES });
for (const { label, code } of JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))) {
  const module = device.createShaderModule({ code, label });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error')
    .map((m) => `${m.lineNum}:${m.linePos}: ${m.message.split('\n')[0]}`);
  console.log(JSON.stringify({ label, errors }));
}
device.destroy();
