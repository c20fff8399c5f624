#!/usr/bin/env bash
# The in-browser peer on the GPU machine: ONNX Runtime Web (WebGPU execution provider) on the random SD 1.5 UNet in
# f16 (bench/ort_export.py), one batch-2 evaluation at 512x512 timed as the app's UNet step, in the same Chromium
# as the app. Its f16 model needs shader-f16: pass $CHROME_F16_FLAGS. After the first staging call of
# ../shared/device-chrome/README.md, one call carrying .device-chrome/b, .ort and .whl (diffusers):
#   . .device-chrome/b/setup.sh && bench/h100_ort.sh $CHROME_F16_FLAGS
# Result: $OUT/ort.json (or ./ort.json). Make .ort here (npm's onnxruntime-web, 27 MiB of it) with
#   (cd /tmp && npm pack onnxruntime-web@1.30.0) && mkdir -p .ort && tar xzf /tmp/onnxruntime-web-1.30.0.tgz \
#     -C .ort --strip-components=2 package/dist/ort.webgpu.min.mjs package/dist/ort-wasm-simd-threaded.asyncify.mjs \
#     package/dist/ort-wasm-simd-threaded.asyncify.wasm
# Dry run here (SwiftShader has no shader-f16: a tiny UNet in f32): CHROME=/usr/bin/chromium
#   CHROME_FLAGS="--headless=new --enable-unsafe-webgpu --no-sandbox" EXPORT_ARGS="--dtype f32 --tiny" bench/h100_ort.sh
set -euo pipefail
out=${OUT:-.}
site=$(mktemp -d)
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/wheels .whl/*.whl
  export PYTHONPATH=/tmp/wheels${PYTHONPATH:+:$PYTHONPATH}
fi
python3 bench/ort_export.py "$site" ${EXPORT_ARGS:-} > "$out/ort_export.log" 2>&1 || { tail -20 "$out/ort_export.log"; exit 1; }
cp bench/ort_peer.html "$site/"
ln -s "$PWD/.ort" "$site/ort"
port=$((20000 + RANDOM % 20000))
python3 bench/report_server.py $port "$site" "$out/ort.json" "${TIMEOUT_S:-300}" &
server=$!
sleep 0.5
"$CHROME" $CHROME_FLAGS "$@" --user-data-dir="$(mktemp -d)" \
  "http://127.0.0.1:$port/ort_peer.html?report=/report&reps=${REPS:-20}" > "$out/ort_chrome.log" 2>&1 &
chrome=$!
wait $server || true
kill $chrome 2>/dev/null || true
rm -rf "$site"
[ -s "$out/ort.json" ] || { echo "no result; Chromium's log:"; grep -v -i dbus "$out/ort_chrome.log" | tail -20; exit 1; }
cat "$out/ort.json"
