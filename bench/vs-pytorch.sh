#!/usr/bin/env bash
# bench/vs-pytorch.sh [ROUNDS]: our engine and PyTorch 1.13 side by side on this machine, interleaved so that both see
# the same load: per round `resnet bench` in fp32 and bf16 (bf16 only where the CPU has it), then the anchors in
# ../shared/bench (PyTorch fp32 channels_last, PyTorch bf16 autocast, onnxruntime-node on our ONNX export of the same
# network). Prints one line per measurement.
# Needs the built CLI (npm run build) and Debian's python3-torch; PyTorch and onnxruntime are never dependencies of
# the project (onnxruntime-node is a devDependency, for this and the interop tests). ONNX=FILE names the model for
# onnxruntime (default: WEIGHTS, else the packaged weights, exported to a temporary file).
set -u
cd "$(dirname "$0")/.."
rounds=${1:-3}
anchors=../shared/bench
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs); flags: $(grep -m1 -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | xargs)"
ours() {
  node bin/resnet.js bench --json --steps 5 --precision "$1" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(`ours ${r.precision}: train ${r.train_img_s.toFixed(1)} img/s, infer ${r.infer_img_s.toFixed(1)} img/s, batch-1 ${r.latency_ms_b1.toFixed(2)} ms`)})'
}
onnx=${ONNX:-}
if [ -z "$onnx" ]; then
  onnx=$(mktemp -d)/resnet18.onnx
  node bin/resnet.js export ${WEIGHTS:+--weights "$WEIGHTS"} --format onnx --out "$onnx" >/dev/null 2>&1 || onnx=
fi
# the anchor imports onnxruntime-node, which resolves from inside our node_modules
mkdir -p node_modules/.cache && cp "$anchors/ort_speed.mjs" node_modules/.cache/ort_speed.mjs 2>/dev/null
ort() {
  [ -n "$onnx" ] && [ -f node_modules/.cache/ort_speed.mjs ] && node node_modules/.cache/ort_speed.mjs "$onnx" 2 2>&1 | tail -1 | sed 's/^/onnxruntime-node fp32: /'
}
for r in $(seq "$rounds"); do
  echo "round $r ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
  ours fp32
  grep -q -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo && ours bf16
  [ -f "$anchors/torch_speed.py" ] && /usr/bin/python3 "$anchors/torch_speed.py" 128 5 2 1 2>&1 | tail -1
  [ -f "$anchors/torch_bf16.py" ] && /usr/bin/python3 "$anchors/torch_bf16.py" 128 5 2 2>&1 | tail -1
  ort
done
