#!/usr/bin/python3
"""Benchmark: `featureonnx pca fit` against scikit-learn's PCA on the same float32 features, in one run.

    dotnet build -c Release src/FeatureOnnx.Cli
    /usr/bin/python3 export-scripts/bench_pca.py [--sizes 100000x512,20000x4096] [-k 128] [--openblas-dir DIR]

For each size it writes seeded synthetic features (a rank-32 signal through a ReLU plus noise, like pooled CNN
activations) to --data-dir, then times, each in a fresh process:

  ours managed     featureonnx pca fit F.npy -k K --backend managed      (wall clock of the whole command:
                                                                          start-up, reading the file twice, fit, save)
  sklearn          PCA(n_components=K, svd_solver=--solver).fit(X)        (fit only; X already loaded as float32)
and, with --openblas-dir (a folder holding Debian's libopenblas.so.0, libblas.so.3 and liblapack.so.3, e.g.
/usr/lib/x86_64-linux-gnu/openblas-pthread, or the same files unpacked from the libopenblas0-pthread .deb):
  ours openblas    the same command with --backend openblas and that folder on LD_LIBRARY_PATH
  sklearn openblas the same fit with numpy's BLAS/LAPACK resolved to OpenBLAS through LD_LIBRARY_PATH

It prints seconds, the ratio ours/sklearn (below 1: ours is faster) and how far the two models differ (top 10
components up to sign, explained_variance_ratio). threadpoolctl's view of numpy's BLAS is printed for each sklearn
run. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are passed through unchanged unless --unset-openblas-coretype is given.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLI = os.path.join(ROOT, "src", "FeatureOnnx.Cli", "bin", "Release", "net10.0", "featureonnx")


def make_features(path, n, d, seed):
    import numpy as np
    if os.path.exists(path):
        return
    rng = np.random.default_rng(seed)
    rank = 32
    basis = rng.standard_normal((rank, d)).astype(np.float32)
    scales = np.linspace(3, 0.3, rank, dtype=np.float32)
    x = np.lib.format.open_memmap(path + ".partial", mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, 10000):
        m = min(10000, n - start)
        z = rng.standard_normal((m, rank), dtype=np.float32) * scales
        x[start:start + m] = np.maximum(z @ basis + rng.standard_normal((m, d), dtype=np.float32), 0)
    x.flush()
    del x
    os.replace(path + ".partial", path)


def sklearn_child(args):
    """Runs in a subprocess so each BLAS configuration gets a fresh numpy."""
    import numpy as np
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_info
    x = np.load(args.features)
    start = time.perf_counter()
    pca = PCA(n_components=args.k, svd_solver=args.solver).fit(x)
    seconds = time.perf_counter() - start
    np.savez(args.out, components=pca.components_, explained_variance_ratio=pca.explained_variance_ratio_)
    blas = [{k: v for k, v in lib.items() if k in ("internal_api", "version", "architecture", "num_threads", "filepath")} for lib in threadpool_info()]
    print(json.dumps({"seconds": seconds, "blas": blas}))


def run_ours(features, k, model, backend, env):
    start = time.perf_counter()
    result = subprocess.run([CLI, "pca", "fit", features, "-k", str(k), "-o", model, "--backend", backend, "-q"],
                            env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"featureonnx failed: {result.stdout}{result.stderr}")
    return seconds, result.stdout.strip().splitlines()[-1]


def run_sklearn(features, k, solver, out, env):
    result = subprocess.run([sys.executable, __file__, "--sklearn-child", "--features", features, "-k", str(k), "--solver", solver, "--out", out],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"sklearn failed: {result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(ours, theirs):
    import numpy as np
    a, b = np.load(ours), np.load(theirs)
    top = min(10, len(b["components"]))
    ca, cb = a["components"][:top], b["components"][:top]
    signs = np.sign(np.sum(ca * cb, axis=1))[:, None]
    comp = np.max(np.abs(ca * signs - cb)) / np.max(np.abs(cb))
    ratio = np.max(np.abs(a["explained_variance_ratio"][:top] - b["explained_variance_ratio"][:top]) / b["explained_variance_ratio"][:top])
    same_signs = bool(np.all(signs > 0))
    return comp, ratio, same_signs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000x512,20000x4096")
    p.add_argument("-k", type=int, default=128)
    p.add_argument("--solver", default="auto", help="sklearn svd_solver (default auto: randomized for these sizes and k)")
    p.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "featureonnx-bench"))
    p.add_argument("--openblas-dir", default=None)
    p.add_argument("--unset-openblas-coretype", action="store_true")
    p.add_argument("--skip-reference-sklearn", action="store_true", help="only time sklearn with --openblas-dir")
    p.add_argument("--sklearn-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--features", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sklearn_child:
        return sklearn_child(args)
    if not os.path.exists(CLI):
        raise SystemExit(f"{CLI} not found: dotnet build -c Release src/FeatureOnnx.Cli")
    os.makedirs(args.data_dir, exist_ok=True)

    base = dict(os.environ)
    base.pop("LD_LIBRARY_PATH", None)
    if args.unset_openblas_coretype:
        base.pop("OPENBLAS_CORETYPE", None)
        base.pop("OPENBLAS_L2_SIZE", None)
    with_openblas = dict(base, LD_LIBRARY_PATH=args.openblas_dir) if args.openblas_dir else None
    print(f"machine: {os.cpu_count()} cores; OPENBLAS_CORETYPE={base.get('OPENBLAS_CORETYPE', '(unset)')}; sklearn svd_solver={args.solver}; k={args.k}")

    rows = []
    for size in args.sizes.split(","):
        n, d = (int(v) for v in size.split("x"))
        features = os.path.join(args.data_dir, f"features_{n}x{d}.npy")
        make_features(features, n, d, seed=n + d)
        configs = [("managed", "reference BLAS", base)]
        if with_openblas:
            configs.append(("openblas", "OpenBLAS", with_openblas))
        sk = {}
        for label, blas_name, env in configs:
            if blas_name == "reference BLAS" and args.skip_reference_sklearn:
                continue
            out = os.path.join(args.data_dir, f"sklearn_{n}x{d}_{label}.npz")
            sk[label] = run_sklearn(features, args.k, args.solver, out, env)
            sk[label]["out"] = out
            print(f"{size} sklearn ({blas_name}): {sk[label]['seconds']:.2f}s  blas={sk[label]['blas']}", flush=True)
        for backend, _, env in configs:
            model = os.path.join(args.data_dir, f"ours_{n}x{d}_{backend}.npz")
            seconds, line = run_ours(features, args.k, model, backend, env)
            print(f"{size} ours ({backend}): {seconds:.2f}s  [{line}]", flush=True)
            for label, result in sk.items():
                comp, ratio, same = compare(model, result["out"])
                rows.append((size, backend, seconds, label, result["seconds"], seconds / result["seconds"], comp, ratio, same))
    print()
    print("| features | ours | ours s | sklearn BLAS | sklearn s | ours/sklearn | top-10 components diff | ratio diff | same signs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, backend, s, label, ss, r, comp, ratio, same in rows:
        blas = "reference" if label == "managed" else "OpenBLAS"
        print(f"| {size} | {backend} | {s:.2f} | {blas} | {ss:.2f} | {r:.2f} | {comp:.1e} | {ratio:.1e} | {same} |")


if __name__ == "__main__":
    main()
