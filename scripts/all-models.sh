#!/usr/bin/env bash
# All ten zoo ResNets through the model pipeline at full size: synthetic fp32 weights (or the
# zoo's real ones with FETCH=1), int8 quantization with fidelity measured, the split of the
# deepest into stages, verification, and
# upload into wrangler dev's local R2 (REMOTE=1: the real bucket).
#   bash scripts/all-models.sh
# About 3 minutes and 2 GB of RAM on 2 cores; writes ~1.4 GB into models/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=--local; [ "${REMOTE:-}" = 1 ] && target=--remote
npm run build
if [ "${FETCH:-}" = 1 ]; then npm run models -- fetch all; else npm run models -- synth all; fi
npm run models -- quantize all --calib "${CALIB:-test/fixtures/photos}"
# ResNet-101 and -152 int8 do not fit one isolate: split into stages for the stage Workers.
npm run models -- split all
npm run models -- verify all
npm run models -- upload all "$target"
npm run models -- list
