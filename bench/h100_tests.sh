#!/usr/bin/env bash
# Tests that need a real GPU (the tensor-core kernels: SwiftShader and naga offer no subgroup matrices), in the GPU
# machine's Chromium through Playwright (../shared/device-chrome/README.md). Three device calls, back to back:
#   1. carry .device-chrome/a:  mkdir -p /root/stage && cp .device-chrome/a/hs.xz /root/stage/
#   2. carry .whl-pw (Playwright and greenlet for Python 3.12, too large to travel beside Chromium):
#        python3 -m pip install -q --no-index --no-deps --target /root/stage/pw .whl-pw/*.whl
#   3. carry .device-chrome/b and node_modules:
#        . .device-chrome/b/setup.sh && bench/h100_tests.sh $CHROME_F16_FLAGS [PYTEST_ARGS...]
# Leading --flags go to Chromium; the rest to pytest (default: the tensor-core tests, -rP showing the pipeline
# test's PSNR; it builds the tiny fixture with diffusers: carry .whl, install it to /tmp/wheels as for
# bench/torch_reference.py and export PYTHONPATH=/tmp/wheels first). Make .whl-pw here with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux1_x86_64 -d .whl-pw playwright==1.65.2 greenlet==3.5.6
set -euo pipefail
flags=()
while [ $# -gt 0 ] && [[ $1 == --* ]]; do flags+=("$1"); shift; done
[ $# -gt 0 ] || set -- tests/kernels tests/browser/test_tensor_core_pipeline.py -k "tensor_core and not refused" -rP
export PYTHONPATH=/root/stage/pw${PYTHONPATH:+:$PYTHONPATH} DOPPLER_CHROMIUM="$CHROME" DOPPLER_CHROMIUM_ARGS="$CHROME_FLAGS ${flags[*]}" \
  DOPPLER_APP_PAGE=bench.html  # the headless shell there has no fonts: a page with text crashes it
python3 -m pytest -p no:cacheprovider -q "$@"
