#!/usr/bin/env bash
# Train, score and ship the CPU weights of every reference model (issue 20, item 6).
#
#   bash reference_models/weights/train.sh            # data, train, eval, ship (all models)
#   bash reference_models/weights/train.sh eval       # re-score the trained runs and ship again
#   MODELS="dtb" bash reference_models/weights/train.sh
#
# Data: the bundled courtyard panorama for training, the bundled interior panorama
# held out for scoring, with the recipe beside this script that the model's task names for
# its probe preset (ModelTask.data_recipes: panorama-video.toml, virtual videos;
# panorama-latent.toml, single images with 3 latent frames). Each model trains its probe preset on 2 CPU cores; the run
# lives in $WORK (default /tmp/blursynth-weights) and these files are copied here:
#   <model>/model.pt  config.json  log.jsonl  curves.png  dataset.toml  eval.json
set -euo pipefail
cd "$(dirname "$0")/../.."
BLURSYNTH=${BLURSYNTH:-blursynth}
PYTHON=${PYTHON:-python}
WORK=${WORK:-/tmp/blursynth-weights}
MODELS=${MODELS:-$($PYTHON -m reference_models list --validators)}  # each family's full model
STAGE=${1:-all}
PANO=${PANO:-blursynth/data/panoramas}
HERE=reference_models/weights
mkdir -p "$WORK"

# The recipe of the model's probe data, from its task (python -m reference_models; no model named here)
recipe_of() { basename "$($PYTHON -m reference_models recipe "$1" --preset probe)" .toml; }
train_n() { [ "$1" = panorama-video ] && echo 160 || echo 1200; }
test_n() { [ "$1" = panorama-video ] && echo 24 || echo 96; }

for model in $MODELS; do
  recipe=$(recipe_of "$model")
  if [ "$STAGE" = all ]; then
    # re-running resumes a half-made dataset; a complete one is kept as it is
    $BLURSYNTH panorama --recipe "$HERE/$recipe.toml" --src "$PANO/courtyard.hdr" --n "$(train_n "$recipe")" \
      --seed 1 --out "$WORK/$recipe-train" --quiet
    $BLURSYNTH panorama --recipe "$HERE/$recipe.toml" --src "$PANO/interior.hdr" --n "$(test_n "$recipe")" \
      --seed 2 --out "$WORK/$recipe-test" --quiet
    resume=""; [ -f "$WORK/runs/$model/checkpoint.pt" ] && resume="--resume"
    $BLURSYNTH train-reference "$model" --preset probe --data "$WORK/$recipe-train" --out "$WORK/runs/$model" \
      --workers 1 --ckpt-every 250 $resume
  fi
  $BLURSYNTH eval-reference "$WORK/runs/$model" --data "$WORK/$recipe-test" --split all \
    --out "$WORK/runs/$model/eval.json" --quiet
  mkdir -p "$HERE/$model"
  cp "$WORK/runs/$model/"{model.pt,config.json,log.jsonl,curves.png,eval.json} "$HERE/$model/"
  cp "$HERE/$recipe.toml" "$HERE/$model/dataset.toml"
done
