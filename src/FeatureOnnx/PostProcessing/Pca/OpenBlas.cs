using System.Runtime.InteropServices;

namespace FeatureOnnx.PostProcessing;

/// <summary>
/// Optional accelerator: Debian's OpenBLAS (<c>libopenblas.so.0</c>, package libopenblas0-pthread or -openmp) called
/// through P/Invoke for the covariance (<c>cblas_dsyrk</c>) and the eigendecomposition (LAPACK's <c>dsyevr</c>, Fortran ABI: Debian's build has no LAPACKE).
/// Nothing is shipped: <see cref="TryLoad"/> returns null where the library is absent and the managed code runs.
/// </summary>
internal sealed unsafe class OpenBlas
{
    /// <summary>The file name tried first (the dynamic loader's search path applies).</summary>
    public const string DefaultLibrary = "libopenblas.so.0";

    private const int RowMajor = 101, Upper = 121, NoTrans = 111;
    private readonly delegate* unmanaged<int, int, int, int, int, double, double*, int, double, double*, int, void> _dsyrk;
    // dsyevr_(jobz, range, uplo, n, a, lda, vl, vu, il, iu, abstol, m, w, z, ldz, isuppz, work, lwork, iwork, liwork, info, 3 hidden string lengths)
    private readonly delegate* unmanaged<byte*, byte*, byte*, int*, double*, int*, double*, double*, int*, int*, double*, int*, double*, double*, int*, int*, double*, int*, int*, int*, int*, nint, nint, nint, void> _dsyevr;

    private OpenBlas(string path, nint syrk, nint syevr)
    {
        LibraryPath = path;
        _dsyrk = (delegate* unmanaged<int, int, int, int, int, double, double*, int, double, double*, int, void>)syrk;
        _dsyevr = (delegate* unmanaged<byte*, byte*, byte*, int*, double*, int*, double*, double*, int*, int*, double*, int*, double*, double*, int*, int*, double*, int*, int*, int*, int*, nint, nint, nint, void>)syevr;
    }

    /// <summary>The library that was loaded.</summary>
    public string LibraryPath { get; }

    /// <summary>
    /// Loads <paramref name="library"/> (default <see cref="DefaultLibrary"/>, then the Debian multiarch paths) and
    /// binds its symbols; null when it is absent or lacks them. <paramref name="reason"/> says why not.
    /// </summary>
    public static OpenBlas? TryLoad(out string reason, string? library = null)
    {
        string[] candidates = library is not null ? [library]
            : [DefaultLibrary, "/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "/usr/lib/aarch64-linux-gnu/libopenblas.so.0"];
        foreach (var candidate in candidates)
        {
            if (!NativeLibrary.TryLoad(candidate, out var handle)) continue;
            if (NativeLibrary.TryGetExport(handle, "cblas_dsyrk", out var syrk) && NativeLibrary.TryGetExport(handle, "dsyevr_", out var syevr))
            {
                reason = "";
                return new OpenBlas(candidate, syrk, syevr);
            }
            reason = $"{candidate} lacks cblas_dsyrk or dsyevr_";
            return null;
        }
        reason = $"{candidates[0]} not found (Debian: apt-get install libopenblas0-pthread)";
        return null;
    }

    /// <summary>C += A A^T on the upper triangle; A is n x k row-major, C is n x n row-major.</summary>
    public void SyrkUpper(double[] a, int n, int k, double[] c)
    {
        if ((long)n * k > a.Length || (long)n * n > c.Length) throw new ArgumentException("array too small for the dimensions");
        fixed (double* pa = a)
        fixed (double* pc = c)
            _dsyrk(RowMajor, Upper, NoTrans, n, k, 1.0, pa, k, 1.0, pc, n);
    }

    /// <summary>
    /// The <paramref name="count"/> largest eigenvalues (descending) and their eigenvectors (rows of
    /// <paramref name="vectors"/>, count x n) of the symmetric n x n matrix <paramref name="a"/> (overwritten).
    /// </summary>
    public void TopEigen(double[] a, int n, int count, double[] values, double[] vectors)
    {
        if (count < 1 || count > n) throw new ArgumentOutOfRangeException(nameof(count));
        var w = new double[n];
        var z = new double[(long)n * count];
        var support = new int[2 * count];
        byte jobz = (byte)'V', range = (byte)'I', uplo = (byte)'L';
        int lda = n, il = n - count + 1, iu = n, found = 0, info = 0, query = -1, iworkSize = 0;
        double vl = 0, vu = 0, abstol = 0, workSize = 0;
        fixed (double* pa = a)
        fixed (double* pw = w)
        fixed (double* pz = z)
        fixed (int* ps = support)
        {
            _dsyevr(&jobz, &range, &uplo, &n, pa, &lda, &vl, &vu, &il, &iu, &abstol, &found, pw, pz, &lda, ps, &workSize, &query, &iworkSize, &query, &info, 1, 1, 1);
            if (info != 0) throw new InvalidOperationException($"dsyevr workspace query failed (info {info})");
            var work = new double[(int)workSize];
            var iwork = new int[iworkSize];
            int lwork = work.Length, liwork = iwork.Length;
            fixed (double* pwork = work)
            fixed (int* piwork = iwork)
                _dsyevr(&jobz, &range, &uplo, &n, pa, &lda, &vl, &vu, &il, &iu, &abstol, &found, pw, pz, &lda, ps, pwork, &lwork, piwork, &liwork, &info, 1, 1, 1);
        }
        if (info != 0 || found != count) throw new InvalidOperationException($"dsyevr failed (info {info}, {found} of {count} eigenvalues)");
        // Ascending order out of LAPACK; z is column-major n x count, so eigenvector c is z[c*n .. c*n+n).
        for (var c = 0; c < count; c++)
        {
            var src = count - 1 - c;
            values[c] = w[src];
            Array.Copy(z, (long)src * n, vectors, (long)c * n, n);
        }
    }
}
