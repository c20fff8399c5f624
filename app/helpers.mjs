// Small JS helpers the worker's Python calls where the FFI is slow or a browser API needs plain JS objects.
// They hold no model logic: encoding and replaying recorded dispatch lists, adapter summaries, error capture.

// Adapter limits live on the prototype as getters, invisible to Object.keys: read the names Python asks for.
export function readLimits(limits, names) {
  const out = {};
  for (const name of names) if (limits[name] !== undefined) out[name] = Number(limits[name]);
  return JSON.stringify(out);
}

export function adapterSummary(adapter) {
  const info = adapter.info || {};
  return JSON.stringify({
    vendor: info.vendor || '', architecture: info.architecture || '', description: info.description || '',
    features: [...adapter.features].sort(),
    // Chromium's chromium-experimental-subgroup-matrix: "f16>f32 16x16x16" is f16 operands, f32 results, M x N x K.
    subgroupMatrixConfigs: [...(info.subgroupMatrixConfigs || [])].map(
      (c) => `${c.componentType}>${c.resultComponentType} ${c.M}x${c.N}x${c.K}`),
    subgroupMinSize: info.subgroupMinSize || 0, subgroupMaxSize: info.subgroupMaxSize || 0,
  });
}

// A bind group from a flat [binding, buffer, offset, size, ...] array: one FFI call with one array, instead of the
// nested descriptor objects Python would convert entry by entry (the eager path makes one per dispatch). Each
// pipeline's layout is asked for once.
const bindGroupLayouts = new WeakMap();
export function bindGroup(device, pipeline, flat, label) {
  let layout = bindGroupLayouts.get(pipeline);
  if (!layout) {
    layout = pipeline.getBindGroupLayout(0);
    bindGroupLayouts.set(pipeline, layout);
  }
  const entries = [];
  for (let i = 0; i < flat.length; i += 4) {
    entries.push({ binding: flat[i], resource: { buffer: flat[i + 1], offset: flat[i + 2], size: flat[i + 3] } });
  }
  return device.createBindGroup({ layout, entries, label });
}

// Collects uncaptured device errors (out of memory, validation) so Python can raise them at its next sync point.
export function watchDevice(device) {
  const state = { errors: [], lost: null };
  device.onuncapturederror = (e) => state.errors.push(`${e.error.constructor.name}: ${e.error.message}`);
  device.lost.then((info) => { state.lost = `${info.reason}: ${info.message}`; });
  return state;
}

export function takeErrors(state) {
  const errors = state.errors.splice(0);
  return JSON.stringify({ errors, lost: state.lost });
}

// A recorded plan: `objects` holds pipelines, bind groups and buffers; `ops` is a flat Uint32Array of records
//   [0, pipeline, bindGroup, x, y, z]            dispatch
//   [1, src, srcOffset, dst, dstOffset, size]    buffer copy (offsets and size in 4-byte words)
// split into submits of at most `maxPerSubmit` dispatches (so no submit runs long enough to trip a watchdog).
// The same walk as Python's `encode_ops` (py/doppler/gpu/backend.py), without a host call per dispatch.
export function makePlan(device, objects, ops, maxPerSubmit) {
  return { device, objects: Array.from(objects), ops: Uint32Array.from(ops), maxPerSubmit };
}

// Replays a plan; with a timestamp query set, each dispatch gets its own pass (queries 2i, 2i+1), resolved at the end.
export function replay(plan, querySet = null, resolveBuffer = null) {
  const { device, objects: o, ops, maxPerSubmit } = plan;
  const buffers = [];
  let encoder = device.createCommandEncoder();
  let pass = null;
  let count = 0;
  let timed = 0;
  for (let i = 0; i < ops.length; i += 6) {
    if (ops[i] === 0) {
      if (pass === null) {
        pass = encoder.beginComputePass(querySet ? { timestampWrites: {
          querySet, beginningOfPassWriteIndex: 2 * timed, endOfPassWriteIndex: 2 * timed + 1 } } : undefined);
      }
      pass.setPipeline(o[ops[i + 1]]);
      pass.setBindGroup(0, o[ops[i + 2]]);
      pass.dispatchWorkgroups(ops[i + 3], ops[i + 4], ops[i + 5]);
      count++;
      timed++;
      if (querySet || count === maxPerSubmit) { pass.end(); pass = null; }
      if (count === maxPerSubmit) { buffers.push(encoder.finish()); encoder = device.createCommandEncoder(); count = 0; }
    } else {
      if (pass !== null) { pass.end(); pass = null; }
      encoder.copyBufferToBuffer(o[ops[i + 1]], ops[i + 2] * 4, o[ops[i + 3]], ops[i + 4] * 4, ops[i + 5] * 4);
    }
  }
  if (pass !== null) pass.end();
  if (querySet && timed) encoder.resolveQuerySet(querySet, 0, 2 * timed, resolveBuffer, 0);
  buffers.push(encoder.finish());
  device.queue.submit(buffers);
  return buffers.length;
}

// Reads a GPU buffer range back (copy into a mappable buffer, map, copy out). The one way tensor data leaves the GPU.
export async function readBuffer(device, buffer, offset, size) {
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const bytes = new Uint8Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return bytes;
}

// Presents an RGBA8 image (one u32 per pixel, rows of `width` packed back to back) from a GPU buffer on a canvas:
// a buffer-to-texture copy into the canvas's current texture, so the pixels never leave the GPU. The canvas takes
// the image's size (CSS scales it). Copies need bytesPerRow to be a multiple of 256, which a packed row of width
// pixels rarely is, so those go one row at a time (a latent preview is at most a few hundred rows).
const COPY_ROW_ALIGNMENT = 256;
const RGBA8_BYTES = 4;
const presented = new WeakMap();  // canvas -> the device its context is configured for

export function present(device, canvas, buffer, offset, width, height) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const context = canvas.getContext('webgpu');
  if (presented.get(canvas) !== device) {
    context.configure({ device, format: 'rgba8unorm', usage: GPUTextureUsage.COPY_DST, alphaMode: 'opaque' });
    presented.set(canvas, device);
  }
  const texture = context.getCurrentTexture();
  const rowBytes = width * RGBA8_BYTES;
  const encoder = device.createCommandEncoder({ label: 'present' });
  if (rowBytes % COPY_ROW_ALIGNMENT === 0) {
    encoder.copyBufferToTexture({ buffer, offset, bytesPerRow: rowBytes }, { texture }, [width, height]);
  } else {
    for (let y = 0; y < height; y++) {
      encoder.copyBufferToTexture({ buffer, offset: offset + y * rowBytes }, { texture, origin: [0, y] }, [width, 1]);
    }
  }
  device.queue.submit([encoder.finish()]);
}
