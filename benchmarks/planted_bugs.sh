#!/usr/bin/env bash
# Do the fast tests bite? Plant one bug at a time in a copy of the repo, run the fast tier (stopping at the first
# failure), and print what it said. Every line should say "failed". About 5 minutes on 2 cores.
#     bash benchmarks/planted_bugs.sh
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

plant() {  # name, file, text to replace, replacement
  rm -rf "$WORK/repo" && mkdir "$WORK/repo"
  (cd "$REPO" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$WORK/repo"
  "$PYTHON" - "$WORK/repo/$2" "$3" "$4" <<'PY'
import sys
from pathlib import Path
path = Path(sys.argv[1]); text = path.read_text()
assert sys.argv[2] in text, f"{path}: the code to plant the bug in has moved"
path.write_text(text.replace(sys.argv[2], sys.argv[3], 1))
PY
  echo "$1: $(cd "$WORK/repo" && "$PYTHON" -m pytest -q -m "not slow" -x -p no:cacheprovider 2>&1 | tail -1)"
}

plant "1-based output" stages/aggregate.py 'str(int(i)) for i in sorted(indices)' 'str(int(i) + 1) for i in sorted(indices)'
plant "descending output" stages/aggregate.py 'for i in sorted(indices))' 'for i in sorted(indices, reverse=True))'
plant "labels reader accepts 2051" stages/decode_idx.py 'read_idx(path, (LABELS_MAGIC,))' 'read_idx(path, (LABELS_MAGIC, GREY_MAGIC))'
plant "balancing ignored" stages/train.py 'weights = class_weights(labels, train_idx, n_classes, balance)' \
  'weights = class_weights(labels, train_idx, n_classes, False)'
plant "fixed threshold ignored" stages/aggregate.py \
  'threshold = params.threshold if params.threshold is not None else pick_threshold(' 'threshold = pick_threshold('
plant "a member trains on what it scores" stages/train.py 'x = standardize(images[train_idx])
    y = torch.as_tensor(labels[train_idx])' 'x = standardize(images[np.union1d(train_idx, score_idx)])
    y = torch.as_tensor(labels[np.union1d(train_idx, score_idx)])'
plant "the plan trains on held-out groups" stages/train.py 'train = np.flatnonzero(~held & ~conflicted[group])' \
  'train = np.flatnonzero(~conflicted[group])'
plant "conflicts never train" stages/train.py '        conflicted[:] = False' '        pass'
plant "per-class counts ignored" stages/aggregate.py 'for c in np.flatnonzero(wrong_by_class >= 0.5):' \
  'for c in []:'
plant "calibration never fitted on copies" stages/aggregate.py 'fitted = scored if through_conflicts else alone' \
  'fitted = alone'
