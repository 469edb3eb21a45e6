#!/usr/bin/env bash
# Train the reference models' paper presets on a GPU machine, score each on a
# held-out scene, pack the runs for shipping and run the GPU benchmarks: ONE call
# of the device tool (10 minutes at most; 15 minutes of device time per session,
# start-up included), see gpu/README.md.
#
#   bash gpu/train_reference.sh                 # every model with shipped CPU weights
#   bash gpu/train_reference.sh dtb fsta        # some of them
#
# Environment: MINUTES (training time per model, default 2.5), DEVICE (cuda), OUT
# (where the packed runs go; the device tool sets it), SMOKE=1 (tiny data and model,
# for a CPU check of the script itself:
#   DEVICE=cpu SMOKE=1 OUT=/tmp/x bash gpu/train_reference.sh dtb).
set -euo pipefail
MINUTES=${MINUTES:-2.5}
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
BENCH=${BENCH:-1}
OUT=${OUT:-/tmp/blursynth-gpu/out}
WORK=${WORK:-/tmp/blursynth-gpu}  # data and runs, outside the checkout
mkdir -p "$OUT" "$WORK"
cd "$(dirname "$0")/.."

# The project's dependencies that the GPU image lacks travel as wheels in .whl/
# (gpu/fetch_wheels.sh); the project itself runs from this checkout.
WHEELS=${WHEELS-.whl}  # WHEELS= (empty) uses the environment as it is
if [ -n "$WHEELS" ] && compgen -G "$WHEELS/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
bs() { python3 -m blursynth "$@"; }
PANO=blursynth/data/panoramas
if [ $# -gt 0 ]; then MODELS=("$@"); else
  read -r -a MODELS <<< "$(python3 -c 'from reference_models.shipped import shipped_models; print(*shipped_models())')"
fi
[ ${#MODELS[@]} -gt 0 ] || { echo "no models to train (none ship CPU weights; name them)" >&2; exit 2; }

# Every per-model setting comes from the model registry (python -m reference_models; the
# script names no model): the panorama recipe of its paper preset's training data.
recipe_of() { python3 -m reference_models recipe "$1" --preset paper; }

if [ "$SMOKE" = 1 ]; then
  N_TRAIN=6; N_TEST=2; SIZE=(--size 64x64)
  TINY=(--batch 2 --patch 32 --workers 0 --val-every 5 --val-samples 2 --val-crop 32)
else
  N_TRAIN=${N_TRAIN:-1500}; N_TEST=${N_TEST:-100}; SIZE=()
  TINY=(--workers 12 --val-every 500)
fi
RENDER=(--device "$DEVICE" -q)
[ "$DEVICE" = cpu ] && RENDER=(-q)
AMP=(--amp bf16)
[ "$DEVICE" = cpu ] && AMP=()
D=$WORK/data R=$WORK/runs

# Data, once per recipe (models that share a recipe share the data): the courtyard scene
# trains, the interior scene is held out (a split by scene, so the score is on a scene the
# model never saw). Prints the data folder's stem.
make_data() {  # RECIPE
  local key
  key=$(basename "$1" .toml)
  if [ ! -f "$D/$key-test/manifest.json" ]; then
    rm -rf "$D/$key-train" "$D/$key-test"
    bs panorama --recipe "$1" "${SIZE[@]}" --src "$PANO/courtyard.hdr" --n "$N_TRAIN" --seed 1 \
       --out "$D/$key-train" "${RENDER[@]}" >&2
    bs panorama --recipe "$1" "${SIZE[@]}" --src "$PANO/interior.hdr" --n "$N_TEST" --seed 2 \
       --out "$D/$key-test" "${RENDER[@]}" >&2
  fi
  echo "$D/$key"
}

for MODEL in "${MODELS[@]}"; do
  RECIPE=$(recipe_of "$MODEL")
  DATA=$(make_data "$RECIPE")
  PRESET=(--preset paper)
  if [ "$SMOKE" = 1 ]; then  # the probe's small model, and short clips (video models), to keep the CPU check short
    PRESET=(--preset probe --clip-len 3)
  fi
  rm -rf "$R/$MODEL"
  bs train-reference "$MODEL" "${PRESET[@]}" --data "$DATA-train" --out "$R/$MODEL" --device "$DEVICE" \
     "${AMP[@]}" --steps 10000000 --time-budget "$MINUTES" "${TINY[@]}" -q
  bs eval-reference "$R/$MODEL" --data "$DATA-test" --split all --device "$DEVICE" \
     --out "$R/$MODEL/eval.json" -q

  # The recipe the training data was made with, so anyone can make the same data from their own panoramas
  cp "$RECIPE" "$R/$MODEL/dataset.toml"
  # What ships: the weights, how they were made and how they score; one tar, in
  # parts of 15 MiB (the device tool brings back files of at most 16 MiB).
  for f in model.pt config.json log.jsonl curves.png eval.json dataset.toml; do
    test -s "$R/$MODEL/$f" || { echo "$R/$MODEL/$f is missing" >&2; exit 1; }
  done
  tar -cf "$R/$MODEL.tar" -C "$R/$MODEL" model.pt config.json log.jsonl curves.png eval.json dataset.toml
  split -b 15m -d "$R/$MODEL.tar" "$OUT/$MODEL.tar.part-"
done

# GPU figures for docs/benchmarks.md: each model's own benchmark, where it has one.
if [ "$BENCH" = 1 ] && [ "$SMOKE" != 1 ]; then
  for MODEL in "${MODELS[@]}"; do
    [ -f "benchmarks/bench_$MODEL.py" ] || continue
    timeout 60 python3 "benchmarks/bench_$MODEL.py" --device "$DEVICE" --json "$OUT/bench_$MODEL.json" || true
  done
fi
ls -l "$OUT"
