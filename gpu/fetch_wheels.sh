#!/usr/bin/env bash
# Run HERE (a machine with the package index) before a GPU session's calls:
# downloads, into .whl/ (ignored by git), the wheels of the project's
# dependencies that the GPU image (Python 3.12, torch, numpy, opencv, h5py,
# scipy, click, joblib, tqdm, matplotlib, pillow already there) lacks.
# The device tool then carries .whl (carry: [".whl"]); gpu/train_reference.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
mkdir -p .whl
for spec in numpy-quaternion py360convert lmdb; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec"
done
ls -l .whl
