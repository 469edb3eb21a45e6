#!/usr/bin/env bash
# Run HERE after a GPU call: unpack a model's parts (as the device tool brought
# them back) into reference_models/weights/MODEL/ (the shipped weights that
# eval-reference --weights and deblur --model use), but only when their held-out
# gain beats the weights already there (FORCE=1: replace anyway).
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
for f in model.pt config.json log.jsonl curves.png eval.json dataset.toml; do
  test -s "$dest.new/$f" || { echo "$f missing from the parts" >&2; rm -rf "$dest.new"; exit 1; }
done
gain() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['psnr']['gain'])" "$1"; }
if [ -f "$dest/eval.json" ] && [ "${FORCE:-0}" != 1 ]; then
  new=$(gain "$dest.new/eval.json"); old=$(gain "$dest/eval.json")
  if ! python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$new" "$old"; then
    echo "$MODEL: held-out gain $new dB does not beat the shipped $old dB; kept the shipped weights" >&2
    rm -rf "$dest.new"; exit 0
  fi
fi
rm -rf "$dest" && mv "$dest.new" "$dest"
ls -l "$dest"
