#!/usr/bin/env bash
# The GPU check of issue 23, run on the device machine (bench/device/README.md) or, with QUICK=1, here at
# toy sizes under bench/device/mimic (pack.sh --check) to catch what would fail there at no device time.
#
#   STEPS="tests ingest faiss" bash bench/device/run.sh     # then STEPS=finetune in the next call
#
# Everything it measures goes to $OUT: machine.txt, run.log, pytest.log, ingest.json, faiss.jsonl,
# finetune.jsonl.
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder the results go to}"
mkdir -p "$OUT"
QUICK=${QUICK:-0}
STEPS=${STEPS:-"tests ingest faiss finetune"}
PY=${PY:-python3}
log() { echo "== $(date +%T) $*" | tee -a "$OUT/run.log"; }

if [ "$QUICK" != 1 ] && [ ! -f /tmp/rk/installed ]; then
  log "payload: reassemble, check, install"
  cat $(ls /tmp/rk/chunk-* | sort -t- -k2 -n) > /tmp/rk/payload.tar
  want=$(cat .device/part-*/payload.sha256)
  [ "$(sha256sum /tmp/rk/payload.tar | cut -d' ' -f1)" = "$want" ] || { log "payload checksum mismatch"; exit 2; }
  tar -C /tmp/rk -xf /tmp/rk/payload.tar
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site /tmp/rk/wheels/*.whl \
    || exit 2
  # faiss-gpu-cu12 links cuBLAS 12; the image has cuBLAS 13 (torch's): a shim forwards FAISS's 8 calls
  mkdir -p /tmp/shim
  echo 'libcublas.so.12 { global: cublas*; local: *; };' > /tmp/shim/cublas.map
  echo 'libcublasLt.so.12 { global: ragkit_unused; local: *; };' > /tmp/shim/cublaslt.map
  echo 'void ragkit_unused(void) {}' > /tmp/shim/lt.c
  gcc -O2 -shared -fPIC -Wl,-soname,libcublas.so.12 -Wl,--version-script=/tmp/shim/cublas.map \
    -o /tmp/shim/libcublas.so.12 bench/device/cublas12_shim.c -ldl || exit 2
  gcc -O2 -shared -fPIC -Wl,-soname,libcublasLt.so.12 -Wl,--version-script=/tmp/shim/cublaslt.map \
    -o /tmp/shim/libcublasLt.so.12 /tmp/shim/lt.c || exit 2
  touch /tmp/rk/installed
fi
if [ "$QUICK" != 1 ]; then
  cublas13=$(find / -name 'libcublas.so.13*' -not -path '/proc/*' 2>/dev/null | head -1)
  export RAGKIT_CUBLAS13="$cublas13" _FAISS_WHEEL_DISABLE_CUDA_PRELOAD=1
  export LD_LIBRARY_PATH="/tmp/shim:/tmp/site/nvidia/cuda_runtime/lib:${LD_LIBRARY_PATH:-}"
  export PYTHONPATH="/tmp/site:$PWD"
  nvidia-smi > "$OUT/machine.txt" 2>&1
  lscpu | grep -E 'Model name|^CPU\(s\)' >> "$OUT/machine.txt"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
$PY -c "import faiss, torch; print('faiss', faiss.__version__, 'GPUs', faiss.get_num_gpus(), '| torch',
torch.__version__, 'CUDA', torch.cuda.is_available())" 2>&1 | tee -a "$OUT/run.log"

if [ "$QUICK" = 1 ]; then COPIES=1 CHARS=200000 SIZES=20000 SPECS=Flat,IVF64,Flat QUERIES=20 BATCH=200; fi
for step in $STEPS; do
  case $step in
    tests)
      log "pytest -m gpu"
      $PY -m pytest -m gpu tests/test_gpu.py -v -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log" | tail -15 ;;
    ingest)
      log "ingest: ragkit vs raw encode"
      $PY bench/ingest.py --copies "${COPIES:-40}" --chars "${CHARS:-2000000}" --repeats "${REPEATS:-3}" \
        --json "$OUT/ingest.json" 2>&1 | tee -a "$OUT/run.log" | tail -12 ;;
    faiss)
      log "FAISS: CPU and GPU"
      $PY bench/retrieval.py scale --sizes "${SIZES:-1000000}" --specs "${SPECS:-Flat,IVF4096,Flat}" \
        --devices cpu,cuda --queries "${QUERIES:-200}" --batch "${BATCH:-10000}" 2>&1 | tee "$OUT/faiss.jsonl" ;;
    finetune)
      log "finetune: run S2 of docs/benchmarks.md on this device"
      args=(--chunks 200 --heldout 0.25 --model-questions 8 --epochs 2 --name S2-gpu)
      [ "$QUICK" = 1 ] && args=(--chunks 8 --heldout 0.25 --model-questions 0 --steps 1 --max-chars 20000 --name quick)
      $PY bench/finetune.py --workdir /tmp/ft stdlib "${args[@]}" 2>&1 | tail -30 | tee -a "$OUT/run.log"
      cp /tmp/ft/results.jsonl "$OUT/finetune.jsonl" 2>/dev/null ;;
    *) log "unknown step $step"; exit 2 ;;
  esac
done
log "done"
