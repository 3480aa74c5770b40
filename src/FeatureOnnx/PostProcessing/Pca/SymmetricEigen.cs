using System.Numerics;
using System.Runtime.CompilerServices;

namespace FeatureOnnx.PostProcessing;

/// <summary>
/// The largest eigenpairs of a symmetric matrix, for D in the thousands where MathNet's managed EVD (JAMA's
/// tred2/tql2, scalar, all n eigenvectors) takes minutes. The LAPACK recipe, in managed SIMD code:
/// Householder tridiagonalisation A = Q T Q^T (one fused pass over the upper triangle per step: the previous step's
/// rank-2 update and this step's matrix-vector product, rows split across cores), all eigenvalues of T by implicit
/// QL, the wanted eigenvectors of T by inverse iteration with re-orthogonalisation inside clusters (as dstein), and
/// x = Q z for those only.
/// </summary>
internal static class SymmetricEigen
{
    /// <summary>
    /// Eigenvalues of the symmetric n x n row-major <paramref name="a"/> (destroyed), all of them in descending
    /// order, and the eigenvectors of the first <paramref name="count"/> (rows of the returned array, count x n).
    /// <paramref name="countFromValues"/>, when given, chooses the count from the eigenvalues.
    /// </summary>
    public static (double[] Values, double[] Vectors) Largest(double[] a, int n, int count, int maxDegreeOfParallelism = -1, Func<double[], int>? countFromValues = null)
    {
        var diagonal = new double[n];
        var offDiagonal = new double[n]; // offDiagonal[i] couples i and i+1
        var betas = new double[n];
        Tridiagonalize(a, n, diagonal, offDiagonal, betas, maxDegreeOfParallelism);

        var values = TridiagonalEigenvalues(diagonal, offDiagonal, n);
        Array.Sort(values);
        Array.Reverse(values);
        if (countFromValues is not null) count = countFromValues(values);
        count = Math.Clamp(count, 0, n);

        var vectors = TridiagonalEigenvectors(diagonal, offDiagonal, n, values.AsSpan(0, count));
        BackTransform(a, n, betas, vectors, count, maxDegreeOfParallelism);
        return (values, vectors);
    }

    /// <summary>Steps whose rank-2 updates are held back and applied to the trailing matrix together.</summary>
    private const int Panel = 16;

    /// <summary>
    /// Householder reduction; the reflector of step k is kept in row k of <paramref name="a"/> (columns k+1..n-1)
    /// with its beta. As LAPACK's dsytrd, the rank-2 updates of up to <see cref="Panel"/> steps are held back: the
    /// matrix-vector product of a step reads the stored (not yet updated) triangle and corrects for the held-back
    /// updates with O(n) work per update, so the triangle is only read per step and rewritten once per panel.
    /// </summary>
    private static unsafe void Tridiagonalize(double[] a, int n, double[] diagonal, double[] offDiagonal, double[] betas, int maxDegreeOfParallelism)
    {
        var v = new double[n];
        var heldV = new double[Panel][];
        var heldW = new double[Panel][];
        for (var q = 0; q < Panel; q++) { heldV[q] = new double[n]; heldW[q] = new double[n]; }
        var held = 0;
        var p = new double[n];
        var threads = maxDegreeOfParallelism > 0 ? maxDegreeOfParallelism : Environment.ProcessorCount;
        var partials = new double[threads][];
        for (var t = 0; t < threads; t++) partials[t] = new double[n];

        fixed (double* pa = a)
        fixed (double* pvv = v)
        {
            var A = pa;
            var V = pvv;
            for (var k = 0; k < n; k++)
            {
                var row = A + (long)k * n;
                BringUpToDate(row, k, n, heldV, heldW, held);
                diagonal[k] = row[k];
                if (k >= n - 1) break;
                if (k == n - 2)
                {
                    offDiagonal[k] = row[k + 1];
                    var last = A + (long)(n - 1) * n;
                    BringUpToDate(last, n - 1, n, heldV, heldW, held);
                    diagonal[n - 1] = last[n - 1];
                    break;
                }

                // Householder vector for x = A[k, k+1..n-1]: H x = alpha e1, H = I - beta v v^T.
                var m = n - k - 1;
                var x = new Span<double>(row + k + 1, m);
                var norm = 0.0;
                foreach (var xi in x) norm += xi * xi;
                norm = Math.Sqrt(norm);
                Array.Clear(v);
                if (norm == 0)
                {
                    offDiagonal[k] = 0;
                    betas[k] = 0;
                    continue;
                }
                var alpha = x[0] > 0 ? -norm : norm;
                offDiagonal[k] = alpha;
                x.CopyTo(new Span<double>(V + k + 1, m));
                V[k + 1] -= alpha;
                var vv = 0.0;
                for (var i = k + 1; i < n; i++) vv += V[i] * V[i];
                var beta = 2 / vv;
                betas[k] = beta;

                // p = A22 v from the stored upper triangle (read only), rows split across threads...
                foreach (var part in partials) Array.Clear(part, k + 1, m);
                var rowsPerBlock = Math.Max(8, m / (threads * 8));
                var blocks = (m + rowsPerBlock - 1) / rowsPerBlock;
                var next = 0;
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    var part = partials[t];
                    int b;
                    fixed (double* pp = part)
                        while ((b = Interlocked.Increment(ref next) - 1) < blocks)
                        {
                            var i0 = k + 1 + b * rowsPerBlock;
                            var i1 = Math.Min(i0 + rowsPerBlock, n);
                            for (var i = i0; i < i1; i++)
                            {
                                var r = A + (long)i * n;
                                pp[i] += r[i] * V[i] + DotAndAxpy(r + i + 1, V + i + 1, pp + i + 1, V[i], n - i - 1);
                            }
                        }
                });
                Array.Clear(p);
                foreach (var part in partials)
                    for (var i = k + 1; i < n; i++) p[i] += part[i];
                // ... minus what the held-back updates would have changed: (v_q w_q^T + w_q v_q^T) v.
                fixed (double* pp = p)
                    for (var q = 0; q < held; q++)
                    {
                        fixed (double* hv = heldV[q])
                        fixed (double* hw = heldW[q])
                        {
                            var wv = Dot(hw + k + 1, V + k + 1, m);
                            var vdot = Dot(hv + k + 1, V + k + 1, m);
                            Axpy(pp + k + 1, hv + k + 1, -wv, m);
                            Axpy(pp + k + 1, hw + k + 1, -vdot, m);
                        }
                    }
                // w = beta p - (beta^2 / 2)(p . v) v, so that A - v w^T - w v^T = H A H.
                var pv = 0.0;
                for (var i = k + 1; i < n; i++) pv += p[i] * V[i];
                var kappa = beta * beta * pv / 2;
                var hvNew = heldV[held];
                var hwNew = heldW[held];
                Array.Clear(hvNew);
                Array.Clear(hwNew);
                for (var i = k + 1; i < n; i++)
                {
                    hvNew[i] = V[i];
                    hwNew[i] = beta * p[i] - kappa * V[i];
                }
                held++;
                // Keep v for the back-transformation where x used to be (row k is finished).
                new Span<double>(V + k + 1, m).CopyTo(x);
                if (held == Panel)
                {
                    ApplyHeld(A, k + 1, n, heldV, heldW, held, threads);
                    held = 0;
                }
            }
        }
    }

    /// <summary>Applies the held-back updates to one row's upper part.</summary>
    private static unsafe void BringUpToDate(double* row, int i, int n, double[][] heldV, double[][] heldW, int held)
    {
        for (var q = 0; q < held; q++)
            fixed (double* hv = heldV[q])
            fixed (double* hw = heldW[q])
                ApplyRank2(row, i, n, hv, hw);
    }

    /// <summary>Applies the held-back updates to the upper parts of rows <paramref name="first"/>..n-1, column block by column block so a row stays in L1.</summary>
    private static unsafe void ApplyHeld(double* a, int first, int n, double[][] heldV, double[][] heldW, int held, int threads)
    {
        const int columnBlock = 512;
        var m = n - first;
        var rowsPerBlock = Math.Max(4, m / (threads * 8));
        var blocks = (m + rowsPerBlock - 1) / rowsPerBlock;
        var next = 0;
        var A = a;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
        {
            var vs = new double*[held];
            var ws = new double*[held];
            var handles = new System.Runtime.InteropServices.GCHandle[2 * held];
            try
            {
                for (var q = 0; q < held; q++)
                {
                    handles[2 * q] = System.Runtime.InteropServices.GCHandle.Alloc(heldV[q], System.Runtime.InteropServices.GCHandleType.Pinned);
                    handles[2 * q + 1] = System.Runtime.InteropServices.GCHandle.Alloc(heldW[q], System.Runtime.InteropServices.GCHandleType.Pinned);
                    vs[q] = (double*)handles[2 * q].AddrOfPinnedObject();
                    ws[q] = (double*)handles[2 * q + 1].AddrOfPinnedObject();
                }
                int b;
                while ((b = Interlocked.Increment(ref next) - 1) < blocks)
                {
                    var i0 = first + b * rowsPerBlock;
                    var i1 = Math.Min(i0 + rowsPerBlock, n);
                    for (var i = i0; i < i1; i++)
                    {
                        var row = A + (long)i * n;
                        for (var c0 = i; c0 < n; c0 += columnBlock)
                        {
                            var c1 = Math.Min(c0 + columnBlock, n);
                            for (var q = 0; q < held; q++)
                                Rank2Segment(row, c0, c1, vs[q][i], ws[q][i], vs[q], ws[q]);
                        }
                    }
                }
            }
            finally
            {
                foreach (var h in handles) if (h.IsAllocated) h.Free();
            }
        });
    }

    /// <summary>row[j] -= vi w[j] + wi v[j] for j in c0..c1-1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Rank2Segment(double* row, int c0, int c1, double vi, double wi, double* v, double* w)
    {
        var j = c0;
        var width = Vector<double>.Count;
        var svi = new Vector<double>(vi);
        var swi = new Vector<double>(wi);
        for (; j + width <= c1; j += width)
        {
            var r = Vector.Load(row + j);
            r -= svi * Vector.Load(w + j) + swi * Vector.Load(v + j);
            r.Store(row + j);
        }
        for (; j < c1; j++) row[j] -= vi * w[j] + wi * v[j];
    }

    /// <summary>row[j] -= v[i] w[j] + w[i] v[j] for j in i..n-1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ApplyRank2(double* row, int i, int n, double* v, double* w)
    {
        double vi = v[i], wi = w[i];
        var j = i;
        var width = Vector<double>.Count;
        var svi = new Vector<double>(vi);
        var swi = new Vector<double>(wi);
        for (; j + width <= n; j += width)
        {
            var r = Vector.Load(row + j);
            r -= svi * Vector.Load(w + j) + swi * Vector.Load(v + j);
            r.Store(row + j);
        }
        for (; j < n; j++) row[j] -= vi * w[j] + wi * v[j];
    }

    /// <summary>Returns a . x over <paramref name="len"/> and does y += a * s, in one pass over a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double DotAndAxpy(double* a, double* x, double* y, double s, int len)
    {
        var width = Vector<double>.Count;
        var acc = Vector<double>.Zero;
        var vs = new Vector<double>(s);
        var j = 0;
        for (; j + width <= len; j += width)
        {
            var av = Vector.Load(a + j);
            acc = Vector.FusedMultiplyAdd(av, Vector.Load(x + j), acc);
            Vector.FusedMultiplyAdd(av, vs, Vector.Load(y + j)).Store(y + j);
        }
        var dot = Vector.Sum(acc);
        for (; j < len; j++)
        {
            dot += a[j] * x[j];
            y[j] += a[j] * s;
        }
        return dot;
    }

    /// <summary>All eigenvalues of the symmetric tridiagonal matrix, by implicit QL with Wilkinson shifts (EISPACK tql1).</summary>
    private static double[] TridiagonalEigenvalues(double[] diagonal, double[] offDiagonal, int n)
    {
        var d = (double[])diagonal.Clone();
        var e = new double[n];
        Array.Copy(offDiagonal, e, n - 1);
        // Deflate on |e| <= eps (|d_m| + |d_m+1|) or, as JAMA's tql2, on |e| <= eps ||T||: without the absolute test
        // a rank-deficient covariance (rows < D) leaves a block of round-off-sized entries that never splits.
        var norm = 0.0;
        for (var i = 0; i < n; i++) norm = Math.Max(norm, Math.Abs(d[i]) + Math.Abs(e[i]));
        var floor = 2.220446049250313e-16 * norm;
        for (var l = 0; l < n; l++)
        {
            var iterations = 0;
            int m;
            do
            {
                for (m = l; m < n - 1; m++)
                {
                    var dd = Math.Abs(d[m]) + Math.Abs(d[m + 1]);
                    if (Math.Abs(e[m]) + dd == dd || Math.Abs(e[m]) <= floor) break;
                }
                if (m != l)
                {
                    if (++iterations > 200) throw new InvalidOperationException("tridiagonal QL did not converge");
                    var g = (d[l + 1] - d[l]) / (2 * e[l]);
                    var r = Hypot(g, 1);
                    g = d[m] - d[l] + e[l] / (g + (g >= 0 ? Math.Abs(r) : -Math.Abs(r)));
                    double s = 1, c = 1, p = 0;
                    var i = m - 1;
                    var underflow = false;
                    for (; i >= l; i--)
                    {
                        var f = s * e[i];
                        var b = c * e[i];
                        e[i + 1] = r = Hypot(f, g);
                        if (r == 0)
                        {
                            d[i + 1] -= p;
                            e[m] = 0;
                            underflow = true;
                            break;
                        }
                        s = f / r;
                        c = g / r;
                        g = d[i + 1] - p;
                        r = (d[i] - g) * s + 2 * c * b;
                        d[i + 1] = g + (p = s * r);
                        g = c * r - b;
                    }
                    if (underflow) continue;
                    d[l] -= p;
                    e[l] = g;
                    e[m] = 0;
                }
            } while (m != l);
        }
        return d;
    }

    private static double Hypot(double a, double b)
    {
        double x = Math.Abs(a), y = Math.Abs(b);
        if (x < y) (x, y) = (y, x);
        if (x == 0) return 0;
        var t = y / x;
        return x * Math.Sqrt(1 + t * t);
    }

    /// <summary>
    /// Eigenvectors of T for <paramref name="values"/> (descending) by inverse iteration: LU with partial pivoting of
    /// T - lambda I, a fixed pseudo-random start, and Gram-Schmidt against the earlier vectors of the same cluster
    /// (eigenvalues closer than 1e-3 ||T||), as LAPACK's dstein. Rows of the result are the vectors.
    /// </summary>
    private static double[] TridiagonalEigenvectors(double[] diagonal, double[] offDiagonal, int n, ReadOnlySpan<double> values)
    {
        var count = values.Length;
        var vectors = new double[(long)count * n];
        if (count == 0) return vectors;
        var norm = 0.0;
        for (var i = 0; i < n; i++) norm = Math.Max(norm, Math.Abs(diagonal[i]) + (i > 0 ? Math.Abs(offDiagonal[i - 1]) : 0) + (i < n - 1 ? Math.Abs(offDiagonal[i]) : 0));
        if (norm == 0) norm = 1;
        var clusterGap = 1e-3 * norm;
        var separation = 10 * 2.220446049250313e-16 * norm;
        var tiny = 2.220446049250313e-16 * norm;
        var clusterStart = 0;
        var previous = double.NaN;
        var u0 = new double[n]; var u1 = new double[n]; var u2 = new double[n]; var l = new double[n]; var pivot = new bool[n];
        var y = new double[n];
        var random = new Random(1);
        for (var j = 0; j < count; j++)
        {
            var lambda = values[j];
            if (j > 0 && previous - lambda > clusterGap) clusterStart = j;
            if (j > 0 && previous - lambda < separation) lambda = previous - separation; // keep shifts apart, as dstein
            previous = lambda;
            Factor(diagonal, offDiagonal, n, lambda, tiny, u0, u1, u2, l, pivot);
            for (var i = 0; i < n; i++) y[i] = random.NextDouble() - 0.5;
            for (var iteration = 0; iteration < 4; iteration++)
            {
                Solve(n, u0, u1, u2, l, pivot, y);
                Orthogonalize(vectors, n, clusterStart, j, y);
                var length = 0.0;
                foreach (var yi in y) length += yi * yi;
                length = Math.Sqrt(length);
                if (length == 0) { y[j % n] = 1; continue; }
                for (var i = 0; i < n; i++) y[i] /= length;
            }
            Array.Copy(y, 0, vectors, (long)j * n, n);
        }
        return vectors;
    }

    private static unsafe void Orthogonalize(double[] vectors, int n, int from, int to, double[] y)
    {
        fixed (double* pv = vectors)
        fixed (double* py = y)
            for (var c = from; c < to; c++)
            {
                var q = pv + (long)c * n;
                Axpy(py, q, -Dot(q, py, n), n);
            }
    }

    /// <summary>LU of T - lambda I with partial pivoting: U has diagonals u0, u1, u2; l holds the multipliers; pivot[i] marks a row swap at step i.</summary>
    private static void Factor(double[] d, double[] e, int n, double lambda, double tiny, double[] u0, double[] u1, double[] u2, double[] l, bool[] pivot)
    {
        // Row i of the working matrix: (diag, super1, super2) as elimination proceeds.
        var diag = d[0] - lambda;
        var sup = n > 1 ? e[0] : 0;
        for (var i = 0; i < n - 1; i++)
        {
            var sub = e[i];
            var nextDiag = d[i + 1] - lambda;
            var nextSup = i + 1 < n - 1 ? e[i + 1] : 0;
            if (Math.Abs(diag) >= Math.Abs(sub))
            {
                pivot[i] = false;
                if (diag == 0) diag = tiny;
                var m = sub / diag;
                l[i] = m;
                u0[i] = diag; u1[i] = sup; u2[i] = 0;
                diag = nextDiag - m * sup;
                sup = nextSup;
            }
            else
            {
                pivot[i] = true;
                var m = diag / sub;
                l[i] = m;
                u0[i] = sub; u1[i] = nextDiag; u2[i] = nextSup;
                diag = sup - m * nextDiag;
                sup = -m * nextSup;
            }
        }
        u0[n - 1] = diag == 0 ? tiny : diag;
        u1[n - 1] = 0; u2[n - 1] = 0;
    }

    /// <summary>Solves (T - lambda I) x = y in place with the factors from <see cref="Factor"/>; scales to avoid overflow.</summary>
    private static void Solve(int n, double[] u0, double[] u1, double[] u2, double[] l, bool[] pivot, double[] y)
    {
        for (var i = 0; i < n - 1; i++)
        {
            if (pivot[i]) (y[i], y[i + 1]) = (y[i + 1], y[i]);
            y[i + 1] -= l[i] * y[i];
        }
        for (var i = n - 1; i >= 0; i--)
        {
            var s = y[i];
            if (i + 1 < n) s -= u1[i] * y[i + 1];
            if (i + 2 < n) s -= u2[i] * y[i + 2];
            y[i] = s / u0[i];
            if (Math.Abs(y[i]) > 1e150)
            {
                for (var k = i; k < n; k++) y[k] *= 1e-150;
            }
        }
    }

    /// <summary>x = H_0 H_1 ... H_{n-3} z for each vector (rows of <paramref name="vectors"/>), in parallel over vectors.</summary>
    private static unsafe void BackTransform(double[] a, int n, double[] betas, double[] vectors, int count, int maxDegreeOfParallelism)
    {
        fixed (double* pa = a)
        fixed (double* pz = vectors)
        {
            var A = pa;
            var Z = pz;
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, c =>
            {
                var z = Z + (long)c * n;
                for (var k = n - 3; k >= 0; k--)
                {
                    var beta = betas[k];
                    if (beta == 0) continue;
                    var v = A + (long)k * n + k + 1;
                    var zz = z + k + 1;
                    var len = n - k - 1;
                    var dot = Dot(v, zz, len) * beta;
                    Axpy(zz, v, -dot, len);
                }
            });
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double Dot(double* a, double* b, int len)
    {
        var width = Vector<double>.Count;
        var acc = Vector<double>.Zero;
        var j = 0;
        for (; j + width <= len; j += width) acc = Vector.FusedMultiplyAdd(Vector.Load(a + j), Vector.Load(b + j), acc);
        var sum = Vector.Sum(acc);
        for (; j < len; j++) sum += a[j] * b[j];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Axpy(double* y, double* x, double s, int len)
    {
        var width = Vector<double>.Count;
        var vs = new Vector<double>(s);
        var j = 0;
        for (; j + width <= len; j += width) Vector.FusedMultiplyAdd(Vector.Load(x + j), vs, Vector.Load(y + j)).Store(y + j);
        for (; j < len; j++) y[j] += s * x[j];
    }
}
