#!/usr/bin/env bash
# The app on the GPU machine's Chromium (second device call; see ../shared/device-chrome/README.md):
#   . .device-chrome/b/setup.sh && bench/h100_app.sh [EXTRA_CHROME_FLAGS...]
# Builds a full-size random SD 1.5 (f16 weights) with `doppler convert --random sd15`, writes the app as static files
# with it, and runs `bench_suite` through the page's autorun mode (dispatch overhead, kernels at 512x512 shapes,
# cold/warm 20-step DPM++ 2M with CFG and 4-step LCM, a profiled UNet step). Result: $OUT/app.json (or ./app.json).
set -euo pipefail
out=${OUT:-.}
export PYTHONPATH=$PWD/py
[ -f /tmp/sd15/manifest.json ] || python3 -m doppler.cli convert --random sd15 --seed 0 /tmp/sd15 --dtype f16 > "$out/convert.log"
python3 -m doppler.cli dist /tmp/site --models /tmp/sd15 > /dev/null
job=$(python3 -c 'import json, urllib.parse; print(urllib.parse.quote(json.dumps({"call": "bench_suite", "args": {"model": "models/sd15/manifest.json"}})))')
TIMEOUT_S=${TIMEOUT_S:-420} .device-chrome/b/run-page.sh /tmp/site "index.html?autorun=$job&report=/result" "$@" \
  | sed -n 's/^RESULT //p' > "$out/app.json"
python3 - "$out/app.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if not r.get("ok"):
    sys.exit(f"bench failed: {r.get('error')}")
r = r["result"]
p = r["pipeline"]
print("device:", p["device"]["adapter"], p["device"]["features"])
print("dispatch us direct/replay:", r["dispatch"]["directUsPerDispatch"], r["dispatch"]["replayUsPerDispatch"])
for name, s in p["runs"].items():
    print(f"{name}: text {s['textEncoderMs']} ms, unet {s['unetMsPerStep']} ms/step x {s['steps']}, vae {s['vaeMs']} ms, total {s['totalMs']} ms, peak {s['peakBytes']/2**30:.2f} GiB")
print("unet step profile:", json.dumps(p["unetStepProfile"]))
for row in r["kernels"]["rows"]:
    print(row)
PY
