#!/usr/bin/python3
"""Generate the committed post-processing fixtures for the C# tests (tests/FeatureOnnx.Tests/fixtures/pca/).

What it makes (relative to the repository root), all from fixed seeds:

  fixtures/pca/features_300x64.npy   float32 [300, 64], decaying spectrum in a random basis, mean ~5
  fixtures/pca/test_300x64.npy       float32 [50, 64], held-out rows from the same distribution (for transform)
  fixtures/pca/features_200x40.npy   float32 [200, 40], steeper spectrum, mean ~1000 (tests the shifted sums)
  fixtures/pca/test_200x40.npy       float32 [30, 40]
  fixtures/pca/features_60x100.npy   float32 [60, 100]: fewer rows than features (rank-deficient covariance)
  fixtures/pca/test_60x100.npy       float32 [20, 100]
  fixtures/pca/features_150x37.npy   float32 [150, 37]: D not a multiple of 4 or 8 (padding in the SIMD kernels)
  fixtures/pca/test_150x37.npy       float32 [25, 37]
  fixtures/pca/case_NAME.npz         one scikit-learn reference per case (see CASES): the fitted PCA's
                                     mean, components (u-based signs, as sklearn 1.2 PCA), components_v_based
                                     (the same axes with svd_flip's v-based signs, as sklearn >= 1.5; numpy
                                     stores it Fortran-ordered, which exercises NpzArchive's transpose),
                                     explained_variance, explained_variance_ratio, singular_values,
                                     noise_variance, n_components, transformed (of the training rows) and
                                     transformed_test (of the held-out rows), plus the case's parameters
  fixtures/pca/postprocess.npz       maps [5, 8, 3, 4] and numpy's global average / max / flatten of them,
                                     l2_in / l2_out (rows incl. a zero row), and l2 of the average-pooled rows
  fixtures/pca/retrieval.npz         reference [240, 24] float32 rows in 16 noisy clusters (labels [240] int64, some
                                     clusters with 2 rows, one with 1), candidate = reference plus noise; scikit-learn's
                                     NearestNeighbors(metric='cosine', algorithm='brute') 10 nearest other rows of each
                                     (neighbours_reference / neighbours_candidate [240, 10]), leave-one-out precision at
                                     1 of each (rows whose label no other row has are not queries), the mean 10-NN
                                     overlap, and per-row cosine min / median
  fixtures/pca/versions.txt          numpy / scikit-learn versions that made them

The reference is scikit-learn's PCA(n_components, whiten, svd_solver='full') fitted on the float32 data cast to
float64, so the reference itself carries no float32 rounding. Rerun from the repository root with Debian's python
(it has numpy and scikit-learn; the pyenv python3 first on PATH does not):

    /usr/bin/python3 export-scripts/make_pca_fixtures.py
"""

import os

import numpy as np
import sklearn
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "FeatureOnnx.Tests", "fixtures", "pca")

# name, data, n_components (int or float), whiten
CASES = [
    ("k10", "300x64", 10, False),
    ("k10_whiten", "300x64", 10, True),
    ("var95", "300x64", 0.95, False),
    ("var90_whiten", "200x40", 0.90, True),
    ("k40_all", "200x40", 40, False),
    ("k5_whiten", "200x40", 5, True),
    ("rank_deficient_k20_whiten", "60x100", 20, True),  # fewer rows than features: covariance of rank 59
    ("rank_deficient_var99", "60x100", 0.99, False),
    ("odd_k7_whiten", "150x37", 7, True),  # D not a multiple of the SIMD width: padded paths
]


def correlated(rng, n, d, decay, mean_scale, noise, basis=None, offset=None):
    """Rows with a decaying spectrum: latent scales decay^i, rotated by a random orthogonal basis, plus a mean."""
    if basis is None:
        basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    if offset is None:
        offset = mean_scale * (1 + rng.random(d))
    scales = 10.0 * decay ** np.arange(d)
    z = rng.standard_normal((n, d)) * scales
    x = z @ basis.T + offset + noise * rng.standard_normal((n, d))
    return x.astype(np.float32), basis, offset


def v_based(components):
    """svd_flip(u, v, u_based_decision=False): the largest |loading| of each row positive."""
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    return components * signs[:, None]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240605)
    data = {}
    for name, n, n_test, d, decay, mean_scale in [("300x64", 300, 50, 64, 0.85, 5.0), ("200x40", 200, 30, 40, 0.75, 1000.0),
                                                  ("60x100", 60, 20, 100, 0.9, 2.0), ("150x37", 150, 25, 37, 0.8, 10.0)]:
        x, basis, offset = correlated(rng, n, d, decay, mean_scale, noise=0.01)
        t, _, _ = correlated(rng, n_test, d, decay, mean_scale, noise=0.01, basis=basis, offset=offset)
        np.save(os.path.join(OUT, f"features_{name}.npy"), x)
        np.save(os.path.join(OUT, f"test_{name}.npy"), t)
        data[name] = (x, t)

    for case, name, n_components, whiten in CASES:
        x, t = data[name]
        x64, t64 = x.astype(np.float64), t.astype(np.float64)
        pca = PCA(n_components=n_components, whiten=whiten, svd_solver="full").fit(x64)
        np.savez(
            os.path.join(OUT, f"case_{case}.npz"),
            data=np.array(name),
            n_components_param=np.array(float(n_components)),
            is_ratio=np.array(isinstance(n_components, float)),
            whiten=np.array(whiten),
            mean=pca.mean_,
            components=pca.components_,
            components_v_based=v_based(pca.components_),
            explained_variance=pca.explained_variance_,
            explained_variance_ratio=pca.explained_variance_ratio_,
            singular_values=pca.singular_values_,
            noise_variance=np.array(pca.noise_variance_),
            n_components=np.array(pca.n_components_, dtype=np.int64),
            transformed=pca.transform(x64),
            transformed_test=pca.transform(t64),
        )
        print(f"{case}: {name} n_components={n_components} whiten={whiten} -> k={pca.n_components_}, "
              f"ratio sum {pca.explained_variance_ratio_.sum():.6f}")

    # Pooling / flatten / L2 against numpy.
    maps = rng.standard_normal((5, 8, 3, 4)).astype(np.float32)
    maps[2, 3] = -1.5  # a constant plane
    avg = maps.astype(np.float64).mean(axis=(2, 3))
    l2_in = rng.standard_normal((6, 16)).astype(np.float32) * 3
    l2_in[4] = 0  # a zero row stays zero

    def l2(a):
        a = a.astype(np.float64)
        norms = np.linalg.norm(a, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return a / norms

    np.savez(
        os.path.join(OUT, "postprocess.npz"),
        maps=maps,
        avg=avg,
        max=maps.max(axis=(2, 3)).astype(np.float64),
        flatten=maps.reshape(maps.shape[0], -1).astype(np.float64),
        l2_in=l2_in,
        l2_out=l2(l2_in),
        avg_l2=l2(avg.astype(np.float32)),
    )
    retrieval()
    with open(os.path.join(OUT, "versions.txt"), "w") as f:
        f.write(f"numpy {np.__version__}\nscikit-learn {sklearn.__version__}\n")


def retrieval():
    """Nearest neighbours and leave-one-out precision at 1 by scikit-learn, for RetrievalAgreementTests."""
    rng = np.random.default_rng(20261206)
    sizes = [30, 25, 20, 20, 18, 18, 16, 16, 15, 15, 14, 13, 10, 5, 2, 2, 1]
    sizes[0] += 240 - sum(sizes)
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(sizes)])
    centres = rng.standard_normal((len(sizes), 24))
    reference = (centres[labels] + 0.9 * rng.standard_normal((240, 24))).astype(np.float32)
    order = rng.permutation(240)
    reference, labels = reference[order], labels[order]
    candidate = (reference + 0.15 * rng.standard_normal((240, 24))).astype(np.float32)

    def neighbours(x):
        nn = NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute").fit(x.astype(np.float64))
        _, idx = nn.kneighbors(x.astype(np.float64))
        # Drop each row itself (its own distance is 0, so it comes first unless a duplicate ties with it).
        return np.array([[j for j in row if j != i][:10] for i, row in enumerate(idx)], dtype=np.int64)

    def precision_at_one(nb):
        counts = np.bincount(labels)
        queries = counts[labels] >= 2
        return float(np.mean(labels[nb[queries, 0]] == labels[queries]))

    nr, nc = neighbours(reference), neighbours(candidate)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(nc, nr)])
    r64, c64 = reference.astype(np.float64), candidate.astype(np.float64)
    cos = np.sum(r64 * c64, axis=1) / np.linalg.norm(r64, axis=1) / np.linalg.norm(c64, axis=1)
    np.savez(
        os.path.join(OUT, "retrieval.npz"),
        reference=reference,
        candidate=candidate,
        labels=labels,
        neighbours_reference=nr,
        neighbours_candidate=nc,
        precision_reference=np.array(precision_at_one(nr)),
        precision_candidate=np.array(precision_at_one(nc)),
        queries=np.array(int(np.sum(np.bincount(labels)[labels] >= 2)), dtype=np.int64),
        mean_overlap=np.array(overlap),
        min_cosine=np.array(cos.min()),
        median_cosine=np.array(np.median(cos)),
    )
    print(f"retrieval: p@1 reference {precision_at_one(nr):.4f}, candidate {precision_at_one(nc):.4f}, overlap {overlap:.4f}")


if __name__ == "__main__":
    main()
