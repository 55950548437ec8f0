"""Cross-check of the Rust UCI recipe and the MNIST -> optdigits sanity figure (docs/DATA.md).

Usage (numpy and scikit-learn in any virtualenv):
  tandem data export mnist8 optdigits --out DIR
  python sanity_uci.py DIR $TANDEM_DATA/mnist/x.npy

1. Re-implements the recipe of host-tools/tandem-data/src/uci.rs in numpy, applies it to the cached
   MNIST bytes, and reports how many of the 10,000 images differ from the Rust output.
2. Logistic regression (standardised inputs) trained on 8,000 MNIST8 images: accuracy on the
   other 2,000 and on all of optdigits; then the same with pixels stretched to fill 32x32
   instead of keeping the aspect ratio.
"""

import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

INK = 0.5


def uci_8x8(img, keep_aspect=True):
    ys, xs = np.nonzero(img >= INK)
    if len(ys) == 0:
        return np.zeros(64)
    crop = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float64)
    h, w = crop.shape
    sy, sx = (32 / max(h, w),) * 2 if keep_aspect else (32 / h, 32 / w)
    oy, ox = np.mgrid[0:32, 0:32] + 0.5
    v, u = (oy - (32 - h * sy) / 2) / sy, (ox - (32 - w * sx) / 2) / sx
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    y, x = np.clip(v - 0.5, 0, h - 1), np.clip(u - 0.5, 0, w - 1)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = y - y0, x - x0
    val = (crop[y0, x0] * (1 - fx) * (1 - fy) + crop[y0, x1] * fx * (1 - fy)
           + crop[y1, x0] * (1 - fx) * fy + crop[y1, x1] * fx * fy)
    bits = ((val >= INK) & inside).astype(int)
    return bits.reshape(8, 4, 8, 4).sum(axis=(1, 3)).reshape(64)


def logistic(train_x, train_y, tests):
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y)
    return [clf.score(scaler.transform(x), y) for x, y in tests]


def main(export_dir, mnist_bytes):
    m8 = np.load(f"{export_dir}/mnist8-x.npy").reshape(-1, 64)
    y = np.load(f"{export_dir}/mnist8-y.npy")
    opt = np.load(f"{export_dir}/optdigits-x.npy").reshape(-1, 64)
    opt_y = np.load(f"{export_dir}/optdigits-y.npy")
    # The Rust loader scales bytes to f32 before the recipe; do the same.
    grey = (np.load(mnist_bytes).astype(np.float32) / np.float32(255)).astype(np.float64)
    ours = np.array([uci_8x8(g) for g in grey])
    print(f"numpy recipe vs Rust: {int((ours != m8).any(axis=1).sum())} of {len(m8)} images differ")
    idx = np.random.default_rng(0).permutation(len(m8))
    tr, te = idx[:8000], idx[8000:]
    a, b = logistic(m8[tr], y[tr], [(m8[te], y[te]), (opt, opt_y)])
    print(f"logistic regression, UCI recipe: MNIST8->MNIST8 {a:.3f}, MNIST8->optdigits {b:.3f}")
    stretched = np.array([uci_8x8(g, keep_aspect=False) for g in grey])
    a, b = logistic(stretched[tr], y[tr], [(stretched[te], y[te]), (opt, opt_y)])
    print(f"logistic regression, stretched to fill: MNIST8->MNIST8 {a:.3f}, MNIST8->optdigits {b:.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
