#!/usr/bin/env bash
# The GPU checks of issue 7 (target 5) as one command, for a machine with a CUDA device:
#   tests/test_gpu.py (the BN layer, training, replicas and kill/resume on CUDA against CPU),
#   then `make bench`'s GPU section (steps/s of one seed eager and compiled, K=100 replicas).
# It uses that machine's python3 and its torch; the pure-Python packages such a machine may
# lack (Hydra and its launchers) are installed from .whl/ when that folder has wheels
# (`make gpu-wheels` fetches them on a machine with PyPI). The log goes to $OUT (or .).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${TMPDIR:-/tmp}/bnlab-site
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl || exit 1
  export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
log=${OUT:-.}/gpu_check.log
{
  nvidia-smi -L || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda:', torch.cuda.is_available())"
  "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py; tests=$?
  "$PY" -m bnlab.bench --skip layer norms step replicas fig1; bench=$?
  echo "gpu_check: tests exit $tests, bench exit $bench"
  exit $(( tests || bench ))
} 2>&1 | tee "$log"
