// Autorun mode: `?autorun=<json {call, args}>&report=<url>` runs one api call headless, POSTs each progress event
// ({event, data}) and then the result ({ok, result | error}) to `report`. The benchmarks on GPU machines use it.
export async function autorun(client, params) {
  const report = params.get('report');
  const post = (body) => report && fetch(report, { method: 'POST', body: JSON.stringify(body) });
  for (const name of ['boot', 'download', 'step', 'stage']) client.on(name, (data) => post({ event: name, data }));
  let result;
  try {
    const job = JSON.parse(params.get('autorun'));
    await client.ready;
    result = { ok: true, result: await client.call(job.call, job.args ?? {}) };
  } catch (e) {
    result = { ok: false, error: e.message || String(e) };
  }
  await post(result);
  document.body.dataset.autorun = 'done';
}
