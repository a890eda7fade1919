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
  # faiss-gpu preloads libcudart.so.12, libcublas(Lt).so.12 and libcurand.so.10 from the nvidia.cuda_runtime,
  # nvidia.cublas and nvidia.curand packages: cuBLAS 12 is the shim, cuRAND (soname 10 in CUDA 12 and 13) the image's
  mkdir -p /tmp/site/nvidia/cublas/lib /tmp/site/nvidia/curand/lib
  cp /tmp/shim/libcublas.so.12 /tmp/shim/libcublasLt.so.12 /tmp/site/nvidia/cublas/lib/
  curand=$(find /opt /usr/local /usr/lib -name 'libcurand.so.10*' 2>/dev/null | head -1)
  [ -n "$curand" ] && ln -sf "$curand" /tmp/site/nvidia/curand/lib/libcurand.so.10
  touch /tmp/rk/installed
fi
if [ "$QUICK" != 1 ]; then
  # torch's own cuBLAS 13 (a wheel under the image's Python); the whole disk only if it is not there
  cublas13=$(find /opt /usr/local /usr/lib -name 'libcublas.so.13*' 2>/dev/null | head -1)
  [ -n "$cublas13" ] || cublas13=$(find / -name 'libcublas.so.13*' -not -path '/proc/*' 2>/dev/null | head -1)
  export RAGKIT_CUBLAS13="$cublas13" _FAISS_WHEEL_DISABLE_CUDA_PRELOAD=1
  export LD_LIBRARY_PATH="/tmp/shim:/tmp/site/nvidia/cuda_runtime/lib:${LD_LIBRARY_PATH:-}"
  export PYTHONPATH="/tmp/site:$PWD"
  # FAISS's wheel has machine code up to sm_89 and PTX for sm_80: the driver compiles the kernels it uses for
  # the H200 (sm_90) on first use, once per machine if its cache is big enough to keep them
  export CUDA_MODULE_LOADING=LAZY CUDA_CACHE_MAXSIZE=4294967296
  nvidia-smi > "$OUT/machine.txt" 2>&1
  lscpu | grep -E 'Model name|^CPU\(s\)' >> "$OUT/machine.txt"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
$PY -c "import faiss, torch; print('faiss', faiss.__version__, 'GPUs', faiss.get_num_gpus(), '| torch',
torch.__version__, 'CUDA', torch.cuda.is_available())" 2>&1 | tee -a "$OUT/run.log"

if [ "$QUICK" = 1 ]; then COPIES=1 CHARS=200000 SIZES=20000 SPECS=Flat,IVF64,Flat QUERIES=20 BATCH=200; fi
# each step has its own time limit, so one that hangs (a kernel compile, say) leaves time for the others
limit() { if [ "$QUICK" = 1 ]; then echo 100000; else echo "$1"; fi; }
for step in $STEPS; do
  case $step in
    tests)
      log "pytest -m gpu"
      timeout "$(limit "${TESTS_S:-150}")" $PY -m pytest -m gpu tests/test_gpu.py -v -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log" | tail -15 ;;
    ingest)
      log "ingest: ragkit vs raw encode"
      # the GPU's load twice a second while ingest runs: is the GPU or the parsing the bound?
      if [ "$QUICK" != 1 ]; then
        nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 > "$OUT/gpu_util.csv" &
        smi=$!
      fi
      timeout "$(limit "${INGEST_S:-240}")" $PY bench/ingest.py --copies "${COPIES:-40}" --chars "${CHARS:-2000000}" --repeats "${REPEATS:-3}" \
        --probe-batch "${PROBE:-256}" --json "$OUT/ingest.json" 2>&1 | tee -a "$OUT/run.log" | tail -12
      [ "$QUICK" = 1 ] || kill "$smi" ;;
    faiss)
      log "FAISS: CPU and GPU"
      timeout "$(limit "${FAISS_S:-180}")" $PY bench/retrieval.py scale --sizes "${SIZES:-1000000}" --specs "${SPECS:-Flat,IVF4096}" \
        --devices cpu,cuda --queries "${QUERIES:-200}" --batch "${BATCH:-10000}" 2>&1 | tee "$OUT/faiss.jsonl" ;;
    finetune)
      log "finetune: run S2 of docs/benchmarks.md on this device"
      # FT_ARGS: another run's options, e.g. "--chunks 64 --heldout 0.2 --model-questions 8 --epochs 2 --name S1-gpu"
      read -r -a args <<< "${FT_ARGS:---chunks 200 --heldout 0.25 --model-questions 8 --epochs 2 --name S2-gpu}"
      [ "$QUICK" = 1 ] && args=(--chunks 8 --heldout 0.25 --model-questions 0 --steps 1 --max-chars 20000 --name quick)
      timeout "$(limit "${FINETUNE_S:-360}")" $PY bench/finetune.py --workdir /tmp/ft stdlib "${args[@]}" 2>&1 | tail -30 | tee -a "$OUT/run.log"
      cp /tmp/ft/results.jsonl "$OUT/finetune.jsonl" 2>/dev/null ;;
    *) log "unknown step $step"; exit 2 ;;
  esac
done
log "done"
