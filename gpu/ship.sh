#!/usr/bin/env bash
# Run HERE after a GPU call: unpack a model's parts (as the device tool brought
# them back) into reference_models/weights/MODEL/, the folder that
# eval-reference and deblur take as a run (model.pt + config.json).
#   bash gpu/ship.sh MODEL FOLDER_WITH_PARTS      (DEST=DIR: unpack there instead)
set -euo pipefail
MODEL=${1:?usage: gpu/ship.sh MODEL FOLDER}
FROM=${2:?usage: gpu/ship.sh MODEL FOLDER}
cd "$(dirname "$0")/.."
parts=("$FROM/$MODEL".tar.part-*)
[ -e "${parts[0]}" ] || { echo "no $MODEL.tar.part-* in $FROM" >&2; exit 1; }
dest=${DEST:-reference_models/weights/$MODEL}
rm -rf "$dest.new" && mkdir -p "$dest.new"
cat "${parts[@]}" | tar -xf - -C "$dest.new"
for f in model.pt config.json log.jsonl curves.png eval-heldout.json; do
  test -s "$dest.new/$f" || { echo "$f missing from the parts" >&2; rm -rf "$dest.new"; exit 1; }
done
rm -rf "$dest" && mv "$dest.new" "$dest"
ls -l "$dest"
