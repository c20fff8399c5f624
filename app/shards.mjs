// Shard cache for the worker: fetch with byte progress and Range resume, store in OPFS through sync access handles
// (never `mountNativeFS`, which copies into wasm memory), verify sha256 with SubtleCrypto when written, check the
// XXH32 recorded then when loaded (sha256 where none is recorded or it disagrees), and write shard bytes straight
// into GPU buffers. Shard bytes never pass through Python objects.
// Layout in OPFS: models/<modelId>/<shard file name>, manifest.json for the cached-model list, and
// models/<modelId>/checksums/<shard file name>: {size, sha256, xxh32} of the bytes whose sha256 matched.
import { xxh32 } from './checksum.mjs';

const CHUNK_REPORT_BYTES = 1 << 20;

async function modelDir(modelId, create = true) {
  const root = await navigator.storage.getDirectory();
  const models = await root.getDirectoryHandle('models', { create: true });
  return models.getDirectoryHandle(modelId, { create });
}

const fileName = (path) => path.replaceAll('/', '__');
const CHECKSUMS = 'checksums';

async function withHandle(modelId, path, fn) {
  const file = await (await modelDir(modelId)).getFileHandle(fileName(path), { create: true });
  const handle = await file.createSyncAccessHandle();
  try { return await fn(handle); } finally { handle.close(); }
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

async function readChecksum(modelId, path) {
  try {
    const dir = await (await modelDir(modelId)).getDirectoryHandle(CHECKSUMS);
    return JSON.parse(await (await (await dir.getFileHandle(fileName(path))).getFile()).text());
  } catch {
    return null;  // none recorded (a cache from before checksums), or unreadable: sha256 decides
  }
}

async function writeChecksum(modelId, path, record) {
  const dir = await (await modelDir(modelId)).getDirectoryHandle(CHECKSUMS, { create: true });
  const handle = await (await dir.getFileHandle(fileName(path), { create: true })).createSyncAccessHandle();
  try {
    const data = new TextEncoder().encode(JSON.stringify(record));
    handle.truncate(0);
    handle.write(data, { at: 0 });
    handle.flush();
  } finally { handle.close(); }
}

// Whether a checksum record (readChecksum's, or null) is of this shard: its size and sha256.
const recordOf = (recorded, size, sha256) => recorded !== null && recorded.size === size && recorded.sha256 === sha256;

// Checks bytes (readAll's) of a shard, whose XXH32 is `sum`, against `recorded` (readChecksum's, or null) where it is
// this shard's, else against the sha256, recording the XXH32 once that matches. Returns the sha256 found where it
// differs, else null.
async function verify(modelId, path, bytes, size, sha256, recorded, sum = xxh32(bytes.subarray(0, size))) {
  if (recordOf(recorded, size, sha256) && recorded.xxh32 === sum) return null;
  const digest = hex(await crypto.subtle.digest('SHA-256', bytes.subarray(0, size)));
  if (digest !== sha256) return digest;
  await writeChecksum(modelId, path, { size, sha256, xxh32: sum });
  return null;
}

class ShardError extends Error {
  constructor(kind, message) { super(message); this.name = 'ShardError'; this.kind = kind; }
}

// The whole file, zero-padded to whole 4-byte words (GPU writes move whole words).
function readAll(handle, size) {
  const bytes = new Uint8Array(Math.ceil(size / 4) * 4);
  const got = handle.read(bytes.subarray(0, size), { at: 0 });
  if (got !== size) throw new ShardError('corrupt', `read ${got} of ${size} bytes`);
  return bytes;
}

// Bytes of a cached file (0: none), read without opening it.
async function fileSize(modelId, path) {
  try {
    return (await (await (await modelDir(modelId)).getFileHandle(fileName(path))).getFile()).size;
  } catch {
    return 0;
  }
}

// {file name: bytes} of the model's cached files, read without opening them (no sync access handles).
export async function cachedSizes(modelId) {
  const sizes = {};
  for await (const [name, handle] of (await modelDir(modelId)).entries()) {
    if (handle.kind === 'file') sizes[name] = (await handle.getFile()).size;
  }
  return JSON.stringify(sizes);
}

// Fetches what is missing of one shard (a Range request resumes a partial file), then checks its sha256. A whole
// file with a checksum record passed that check before, and is checked again where it is used (uploadShard), so it
// is not opened here. onProgress(bytesNow) is called as bytes arrive. Returns the number of bytes fetched.
export async function fetchShard(modelId, path, url, size, sha256, onProgress) {
  const recorded = await readChecksum(modelId, path);
  if (recordOf(recorded, size, sha256) && await fileSize(modelId, path) === size) {
    return 0;
  }
  return withHandle(modelId, path, async (h) => {
    let at = h.getSize();
    if (at > size) { h.truncate(0); at = 0; }
    let fetched = 0;
    if (at < size) {
      let response;
      try {
        response = await fetch(url, at > 0 ? { headers: { Range: `bytes=${at}-` } } : {});
      } catch (e) {
        throw new ShardError('network', `fetching ${url} failed (${e.message}): check the connection and retry; what is cached is kept`);
      }
      if (!response.ok) {
        throw new ShardError('http', `fetching ${url}: HTTP ${response.status} ${response.statusText}: the model's files are not where its manifest says; what is cached is kept`);
      }
      if (at > 0 && response.status !== 206) { h.truncate(0); at = 0; }  // the server ignored the Range
      const reader = response.body.getReader();
      let sinceReport = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (at + value.byteLength > size) {
          await reader.cancel();
          h.truncate(0);
          throw new ShardError('size', `${url} is longer than the ${size} bytes its manifest says: the manifest does not match the files`);
        }
        h.write(value, { at });
        at += value.byteLength;
        fetched += value.byteLength;
        sinceReport += value.byteLength;
        if (sinceReport >= CHUNK_REPORT_BYTES) { onProgress(fetched); sinceReport = 0; }
      }
      h.flush();
      onProgress(fetched);
      if (at !== size) {
        throw new ShardError('truncated', `${url} ended after ${at} of ${size} bytes; retry to resume`);
      }
    }
    const digest = await verify(modelId, path, readAll(h, size), size, sha256, null);
    if (digest) {
      h.truncate(0);
      throw new ShardError('sha256', `${url} has sha256 ${digest}, not ${sha256} as its manifest says: the file on the server differs from the manifest (the bad copy was deleted, the rest of the cache kept)`);
    }
    return fetched;
  });
}

// A cached shard's bytes (readAll's) and XXH32; a file of another size throws ShardError('corrupt').
export async function readShard(modelId, path, size) {
  return withHandle(modelId, path, (h) => {
    if (h.getSize() !== size) throw new ShardError('corrupt', `cached ${path} has ${h.getSize()} of ${size} bytes`);
    const bytes = readAll(h, size);
    return { bytes, xxh32: xxh32(bytes.subarray(0, size)) };
  });
}

// Workers of shard_reader.mjs that are idle; uploads in flight at once each take one, made as needed.
const idleReaders = [];

async function readInReader(modelId, path, size) {
  const reader = idleReaders.pop() || new Worker(new URL('./shard_reader.mjs', import.meta.url), { type: 'module' });
  try {
    const reply = await new Promise((resolve, reject) => {
      reader.onmessage = ({ data }) => resolve(data);
      reader.onerror = (e) => reject(new ShardError('read', `the shard reader failed: ${e.message}`));
      reader.postMessage({ modelId, path, size });
    });
    if (reply.error) throw new ShardError(reply.error.kind, reply.error.message);
    return reply;
  } finally {
    idleReaders.push(reader);
  }
}

// Reads a cached shard (in a reader worker), checks it (verify), and writes it into GPU buffers: placements =
// [[buffer, bufferOffset, shardOffset, bytes], ...] (bytes a multiple of 4). A corrupt file throws
// ShardError('corrupt') and is deleted.
export async function uploadShard(device, modelId, path, size, sha256, placements) {
  const { bytes, xxh32: sum } = await readInReader(modelId, path, size);
  const digest = await verify(modelId, path, bytes, size, sha256, await readChecksum(modelId, path), sum);
  if (digest) {
    await withHandle(modelId, path, (h) => h.truncate(0));
    throw new ShardError('corrupt', `cached ${path} is corrupt (sha256 ${digest}, want ${sha256})`);
  }
  for (const [buffer, bufferOffset, shardOffset, n] of placements) {
    device.queue.writeBuffer(buffer, bufferOffset, bytes, shardOffset, n);
  }
  return size;
}

// uploadShard's steps timed apart, for bench_upload: opening the sync access handle, the OPFS read, the XXH32 check
// (what a load runs), the sha256 (what it ran before, and runs where no XXH32 is recorded), the writeBuffer calls into
// a scratch buffer of the shard's size, and the queue until the GPU has the bytes (ms each).
export async function timeUploadShard(device, modelId, path, size) {
  const t0 = performance.now();
  return withHandle(modelId, path, async (h) => {
    const t1 = performance.now();
    const bytes = readAll(h, size);
    const t2 = performance.now();
    xxh32(bytes.subarray(0, size));
    const tCheck = performance.now();
    await crypto.subtle.digest('SHA-256', bytes.subarray(0, size));
    const t3 = performance.now();
    const buffer = device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buffer, 0, bytes, 0, bytes.byteLength);
    const t4 = performance.now();
    await device.queue.onSubmittedWorkDone();
    const t5 = performance.now();
    buffer.destroy();
    return JSON.stringify({ openMs: t1 - t0, readMs: t2 - t1, checkMs: tCheck - t2,
      sha256Ms: t3 - tCheck, writeMs: t4 - t3, queueMs: t5 - t4 });
  });
}

export async function saveManifest(modelId, text) {
  await withHandle(modelId, 'manifest.json', (h) => {
    const data = new TextEncoder().encode(text);
    h.truncate(0);
    h.write(data, { at: 0 });
    h.flush();
  });
}

// [{id, bytes, manifest}] of every cached model.
export async function listModels() {
  const root = await navigator.storage.getDirectory();
  const models = await root.getDirectoryHandle('models', { create: true });
  const out = [];
  for await (const [id, dir] of models.entries()) {
    if (dir.kind !== 'directory') continue;
    let bytes = 0;
    let manifest = null;
    for await (const [name, file] of dir.entries()) {
      if (file.kind !== 'file') continue;  // checksums/: a few bytes a shard
      const f = await file.getFile();
      bytes += f.size;
      if (name === 'manifest.json') manifest = await f.text();
    }
    out.push({ id, bytes, manifest });
  }
  return JSON.stringify(out);
}

export async function deleteModel(modelId) {
  const root = await navigator.storage.getDirectory();
  const models = await root.getDirectoryHandle('models', { create: true });
  await models.removeEntry(modelId, { recursive: true });
}

export async function storageEstimate() {
  const { quota, usage } = await navigator.storage.estimate();
  return JSON.stringify({ quota, usage });
}
