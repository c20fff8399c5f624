#!/usr/bin/env bash
# The app on the GPU machine's Chromium (second device call; see ../shared/device-chrome/README.md):
#   . .device-chrome/b/setup.sh && bench/h100_app.sh [EXTRA_CHROME_FLAGS...]
# Builds a full-size random SD 1.5 (f16 weights) with `doppler convert --random sd15`, writes the app as static files
# with it, and runs `bench_suite` through the page's autorun mode (dispatch overhead, kernels at 512x512 shapes,
# cold/warm 20-step DPM++ 2M with CFG and 4-step LCM, a profiled UNet step). Result: $OUT/app.json (or ./app.json).
# A returning visit: PROFILE=DIR PORT=N for two runs in turn (the same Chromium profile and origin, so the second
# finds the first's OPFS cache).
set -euo pipefail
out=${OUT:-.}
export PYTHONPATH=$PWD/py
preset=${PRESET:-sd15}  # sd15 (full size) or tiny (a local dry run)
if [ "${JOB:-bench_suite}" = bench_kernels ]; then  # no model needed
  python3 -m doppler.cli dist /tmp/doppler-site > /dev/null
else
  [ -f /tmp/$preset/manifest.json ] || python3 -m doppler.cli convert --random $preset --seed 0 /tmp/$preset --dtype f16 > "$out/convert.log"
  python3 -m doppler.cli dist /tmp/doppler-site --models /tmp/$preset > /dev/null
fi
# JOB: an api call (bench_suite, bench_pipeline, bench_kernels); ARGS: JSON merged into its arguments.
job=$(python3 -c 'import json, sys, urllib.parse; print(urllib.parse.quote(json.dumps({"call": sys.argv[1], "args": {"model": f"models/{sys.argv[2]}/manifest.json", "size": int(sys.argv[3]), **json.loads(sys.argv[4])}})))' "${JOB:-bench_suite}" $preset "${SIZE:-512}" "${ARGS:-{\}}")
port=${PORT:-$((20000 + RANDOM % 20000))}
python3 bench/report_server.py $port /tmp/doppler-site "$out/app.json" "${TIMEOUT_S:-420}" &
server=$!
sleep 0.5
"$CHROME" $CHROME_FLAGS "$@" --enable-logging=stderr --user-data-dir="${PROFILE:-$(mktemp -d)}" \
  "http://127.0.0.1:$port/bench.html?autorun=$job&report=/report" > "$out/chrome.log" 2>&1 &
chrome=$!
wait $server || true
kill $chrome 2>/dev/null || true
chrome_log() { echo "Chromium's log:"; grep -v -i dbus "$out/chrome.log" | tail -30; exit 1; }
[ -s "$out/app.json" ] || { echo "no result"; chrome_log; }
python3 - "$out/app.json" <<'PY' || chrome_log
import json, sys
r = json.load(open(sys.argv[1]))
if not r.get("ok"):
    sys.exit(f"bench failed: {r.get('error')}")
r = r["result"]
p = r.get("pipeline", r)
if "device" in p:
    print("device:", p["device"]["adapter"], p["device"]["features"])
d = r.get("dispatch", r if "executedUsPerDispatch" in r else None)  # bench_suite's part, or bench_dispatch's result
if d:
    print("dispatch us direct/replay/executed:", d["directUsPerDispatch"], d["replayUsPerDispatch"], d["executedUsPerDispatch"])
for name, s in p.get("runs", {}).items():
    print(f"{name}: text {s['textEncoderMs']} ms, unet {s['unetMsPerStep']} ms/step x {s['steps']}, vae {s['vaeMs']} ms, total {s['totalMs']} ms, peak {s['peakBytes']/2**30:.2f} GiB")
if "unetStepProfile" in p:
    print("unet step profile:", json.dumps(p["unetStepProfile"]))
    print("vae decode profile:", json.dumps(p["vaeDecodeProfile"]))
    print("text encoder profile:", json.dumps(p["textEncoderProfile"]))
for row in r.get("kernels", r).get("rows", []):
    print(row)
PY
