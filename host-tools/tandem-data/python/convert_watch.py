"""Convert seglearn's smartwatch IMU set (watch_dataset.npy, a pickled dict) to plain NPY.

Usage: python convert_watch.py WATCH_DATASET.npy OUT_DIR

`tandem data fetch imu` runs this in the virtualenv it creates under the data cache, after
checking the input's pinned SHA-256 (unpickling runs code, so only the pinned file is ever
loaded). Writes, into OUT_DIR:

  signals.npy  <f4 [samples, 6]  ax ay az (g), wx wy wz (rad/s), 50 Hz, recordings concatenated
  lengths.npy  <i4 [140]         samples per recording, in the pickle's order
  y.npy        |u1 [140]         exercise: 0 PEN, 1 ABD, 2 FEL, 3 IR, 4 ER, 5 TRAP, 6 ROW
  subject.npy  |u1 [140]         participant 1..10
  side.npy     |u1 [140]         1 = right arm, 0 = left arm (the pickle's `side`, unchanged)

The Rust side re-reads these, checks them and writes the cached files itself.
"""

import os
import sys

import numpy as np

CHANNELS = ["ax", "ay", "az", "wx", "wy", "wz"]
EXERCISES = ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"]


def fail(message):
    sys.exit(f"convert_watch.py: {message}")


def main(source, out_dir):
    data = np.load(source, allow_pickle=True).item()
    if not isinstance(data, dict):
        fail(f"expected a dict, found {type(data).__name__}")
    missing = {"X", "y", "subject", "side", "X_labels", "y_labels"} - set(data)
    if missing:
        fail(f"missing keys {sorted(missing)}")
    if list(data["X_labels"]) != CHANNELS:
        fail(f"channels {data['X_labels']} differ from {CHANNELS}")
    if list(data["y_labels"]) != EXERCISES:
        fail(f"exercises {data['y_labels']} differ from {EXERCISES}")
    recordings = data["X"]
    n = len(recordings)
    for key in ("y", "subject", "side"):
        if len(data[key]) != n:
            fail(f"{key} has {len(data[key])} entries for {n} recordings")
    for i, r in enumerate(recordings):
        if r.ndim != 2 or r.shape[1] != len(CHANNELS):
            fail(f"recording {i} has shape {r.shape}")
    side = np.asarray(data["side"])
    if not np.all((side == 0) | (side == 1)):
        fail("side values other than 0 and 1")
    arrays = {
        "signals": np.concatenate(recordings).astype("<f4"),
        "lengths": np.array([len(r) for r in recordings], dtype="<i4"),
        "y": np.asarray(data["y"]).astype("u1"),
        "subject": np.asarray(data["subject"]).astype("u1"),
        "side": side.astype("u1"),
    }
    os.makedirs(out_dir, exist_ok=True)
    for name, array in arrays.items():
        np.save(os.path.join(out_dir, f"{name}.npy"), np.ascontiguousarray(array))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: convert_watch.py WATCH_DATASET.npy OUT_DIR")
    main(sys.argv[1], sys.argv[2])
