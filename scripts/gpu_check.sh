#!/usr/bin/env bash
# The whole GPU check in one command, for a machine with a CUDA device (about 5-8 minutes):
#   1. tests/test_gpu.py: the BN layer, training, replicas, rate grids and kill/resume on CUDA;
#      the compiled step = the eager step on CUDA for each norm Function (BN, Batch Renorm,
#      GroupNorm, nn.BatchNorm) in the MLP and CNN layouts; the paper's
#      network trained 2,000 steps compiled and eager on CUDA, the same curves;
#   2. tests/test_double_backward.py on this machine's torch (make test-torch runs the CPU
#      tests of the compiled path under any torch, on any machine);
#   3. `make bench`'s GPU section;
#   4. paper_fig1 on Fashion-MNIST on CUDA at a short budget (2,000 steps, 5 seeds, compiled):
#      BN must be ahead of no BN in mean test accuracy and within 0.015 of the CPU's, as on
#      CPU (2 cores, commit e872a64: BN 0.8277 +/- 0.0085, none 0.8161 +/- 0.0108; the same
#      command with device=cpu). With the compiler bug of torch 2.11, BN was 0.77 there.
# It uses that machine's python3 and its torch; what a bare machine lacks comes from .whl/
# (`make gpu-wheels` on a machine with PyPI): Hydra & co. as wheels, and Fashion-MNIST's four
# .gz files in .whl/fashion-mnist/. The log goes to $OUT/gpu_check.log (or ./), the runs'
# folders to $OUT/gpu_check_runs.tar.gz.
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
raw=data/FashionMNIST/raw
if [ ! -f "$raw/t10k-labels-idx1-ubyte" ] && compgen -G ".whl/fashion-mnist/*.gz" >/dev/null; then
  mkdir -p "$raw"
  for f in .whl/fashion-mnist/*.gz; do gzip -dc "$f" > "$raw/$(basename "$f" .gz)"; done
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
out=${OUT:-.}
log=$out/gpu_check.log
{
  nvidia-smi -L || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda:', torch.cuda.is_available())"
  "$PY" -m pytest -q -p no:cacheprovider --show-capture=no tests/test_gpu.py \
    tests/test_double_backward.py; tests=$?
  "$PY" -m bnlab.bench --skip layer norms step replicas fig1 suite bound; bench=$?
  "$PY" run.py +experiment=paper_fig1 name=gpu_check_fig1 dataset=fashion_mnist device=cuda \
    hydra/launcher=basic rerun=true trainer.steps=2000 trainer.eval_every=1000 \
    trainer.progress=false
  fig1=$?
  "$PY" - <<'PY'; verdict=$?
import json, pathlib, re, statistics, sys
acc = {}
for f in pathlib.Path("outputs/gpu_check_fig1").rglob("summary.json"):
    s = json.loads(f.read_text())
    norm = re.search(r"norm=(\w+)", str(f)).group(1)
    accuracy = s.get("final", {}).get("test/accuracy", float("nan"))
    acc.setdefault(norm, []).append(accuracy)
    print(f, s["status"], s.get("training_path"), accuracy)
means = {k: statistics.mean(v) for k, v in acc.items()}
print("paper_fig1 at 2,000 steps on CUDA, mean test accuracy:", means)
cpu_bn = 0.8277  # the same command on CPU (see the header)
ok = means.get("bn", 0) > means.get("none", 1) and abs(means.get("bn", 0) - cpu_bn) < 0.015
print("verdict:", "BN ahead of no BN, as on CPU" if ok else "NOT as on CPU")
sys.exit(0 if ok else 1)
PY
  tar -czf "$out/gpu_check_runs.tar.gz" outputs/gpu_check_fig1 2>/dev/null || true
  echo "gpu_check: tests exit $tests, bench exit $bench, fig1 exit $fig1, verdict exit $verdict"
  exit $(( tests || bench || fig1 || verdict ))
} 2>&1 | tee "$log"
