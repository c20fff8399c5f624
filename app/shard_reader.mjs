// A shard reader: a module worker of shards.mjs's pool. It reads one cached shard from OPFS (its own sync access
// handle) and takes its XXH32, off the worker that writes shards to the GPU, so several shards read and check in
// parallel. In: {modelId, path, size}. Out: {bytes (transferred, zero-padded to whole words), xxh32} or {error:
// {kind, message}}.
import { readShard } from './shards.mjs';

self.onmessage = async ({ data: { modelId, path, size } }) => {
  try {
    const { bytes, xxh32 } = await readShard(modelId, path, size);
    self.postMessage({ bytes, xxh32 }, [bytes.buffer]);
  } catch (e) {
    self.postMessage({ error: { kind: e.kind || 'read', message: e.message || String(e) } });
  }
};
