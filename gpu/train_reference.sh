#!/usr/bin/env bash
# Train one reference model on a GPU machine, score it on a held-out scene, and
# pack the run for shipping. One call of the device tool per model (each fits
# its 10-minute limit); see gpu/README.md.
#
#   bash gpu/train_reference.sh dtb|blur2video|fsta
#
# Environment: MINUTES (training time, default 6), DEVICE (cuda), OUT (where the
# packed run goes; the device tool sets it), SMOKE=1 (tiny data and model, for a
# CPU check of the script itself: DEVICE=cpu SMOKE=1 OUT=/tmp/x bash gpu/train_reference.sh dtb).
set -euo pipefail
MODEL=${1:?usage: gpu/train_reference.sh dtb|blur2video|fsta}
MINUTES=${MINUTES:-6}
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

# Data: the courtyard scene trains, the interior scene is held out (a split by
# scene, so the score is on a scene the model never saw).
case "$MODEL" in
  blur2video) DATA=(--recipe argaw2021_panorama) ;;     # one blurred image, 3 latent frames (Argaw 2021)
  dtb|fsta)   DATA=(--seq-len 13 --latent 0) ;;           # sequence mode: a video of consecutive exposures
  *) echo "unknown model $MODEL" >&2; exit 2 ;;
esac
if [ "$SMOKE" = 1 ]; then
  N_TRAIN=6; N_TEST=2; SIZE=(--size 64x64)
  TINY=(--batch 2 --patch 32 --workers 0 --val-every 5 --val-samples 2 --val-crop 32)
  case "$MODEL" in
    dtb) TINY+=(--model-arg blocks=1 --model-arg width=16 --model-arg feature_channels=8 --clip-len 3) ;;
    blur2video) TINY+=(--model-arg width_mult=0.25) ;;
    fsta) TINY+=(--model-arg "widths=[6,8,10]" --model-arg spatial_maps=3 --model-arg temporal_maps=2
                 --model-arg dense_layers=2 --clip-len 5) ;;
  esac
else
  N_TRAIN=${N_TRAIN:-1500}; N_TEST=${N_TEST:-100}; SIZE=()
  TINY=(--workers 12 --val-every 500)
fi
RENDER=(--device "$DEVICE" -q)
[ "$DEVICE" = cpu ] && RENDER=(-q)
D=$WORK/data R=$WORK/runs
rm -rf "$D/$MODEL-train" "$D/$MODEL-test" "$R/$MODEL"
bs panorama "${DATA[@]}" "${SIZE[@]}" --src "$PANO/courtyard.hdr" --n "$N_TRAIN" --seed 1 \
   --out "$D/$MODEL-train" "${RENDER[@]}"
bs panorama "${DATA[@]}" "${SIZE[@]}" --src "$PANO/interior.hdr" --n "$N_TEST" --seed 2 \
   --out "$D/$MODEL-test" "${RENDER[@]}"

AMP=(--amp bf16)
[ "$DEVICE" = cpu ] && AMP=()
bs train-reference "$MODEL" --data "$D/$MODEL-train" --out "$R/$MODEL" --device "$DEVICE" "${AMP[@]}" \
   --steps 10000000 --time-budget "$MINUTES" "${TINY[@]}" -q
bs eval-reference "$R/$MODEL" --data "$D/$MODEL-test" --split all --device "$DEVICE" \
   --out "$R/$MODEL/eval-heldout.json" -q

# What ships: the weights, how they were made and how they score; one tar, in
# parts of 15 MiB (the device tool brings back files of at most 16 MiB).
for f in model.pt config.json log.jsonl curves.png eval-heldout.json; do
  test -s "$R/$MODEL/$f" || { echo "$R/$MODEL/$f is missing" >&2; exit 1; }
done
tar -cf "$R/$MODEL.tar" -C "$R/$MODEL" model.pt config.json log.jsonl curves.png eval-heldout.json
split -b 15m -d "$R/$MODEL.tar" "$OUT/$MODEL.tar.part-"

# GPU figures for docs/benchmarks.md (inference speed; FSTA's memory against a non-local block).
if [ "$BENCH" = 1 ] && [ "$SMOKE" != 1 ]; then
  case "$MODEL" in
    dtb) timeout 90 python3 benchmarks/bench_dtb.py --device "$DEVICE" --json "$OUT/bench_dtb.json" || true ;;
    blur2video) timeout 90 python3 benchmarks/bench_blur2video.py --device "$DEVICE" --json "$OUT/bench_blur2video.json" || true ;;
    fsta) timeout 90 python3 benchmarks/bench_fsta.py --device "$DEVICE" --json "$OUT/bench_fsta.json" || true ;;
  esac
fi
ls -l "$OUT"
