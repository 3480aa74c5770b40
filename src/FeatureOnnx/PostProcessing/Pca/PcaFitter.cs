using System.Diagnostics;
using FeatureOnnx.Formats;

namespace FeatureOnnx.PostProcessing;

/// <summary>Which code runs the covariance and eigendecomposition.</summary>
public enum PcaBackend
{
    /// <summary>OpenBLAS when <c>libopenblas.so.0</c> loads, the managed code otherwise. Default.</summary>
    Auto,

    /// <summary>Managed only: the SIMD covariance kernel; MathNet.Numerics' eigendecomposition up to <see cref="PcaFitOptions.MathNetMaxDimension"/>, <see cref="SymmetricEigen"/> above.</summary>
    Managed,

    /// <summary>OpenBLAS (cblas_dsyrk, dsyevr); fails when it is absent.</summary>
    OpenBlas,
}

/// <summary>Options for <see cref="PcaFitter"/>. Set exactly one of <see cref="Components"/> and <see cref="VarianceRatio"/>.</summary>
public sealed record PcaFitOptions
{
    /// <summary>Keep this many components (scikit-learn's integer <c>n_components</c>); at most min(rows, D).</summary>
    public int? Components { get; init; }

    /// <summary>
    /// Keep the fewest components whose explained variance ratios add up to more than this, in (0, 1)
    /// (scikit-learn's float <c>n_components</c>: <c>searchsorted(cumsum(ratio), v, side='right') + 1</c>).
    /// </summary>
    public double? VarianceRatio { get; init; }

    /// <summary>Divide outputs by sqrt(explained_variance), as <c>PCA(whiten=True)</c>. Default false.</summary>
    public bool Whiten { get; init; }

    /// <summary>Stored in the model to say what it was fitted on, e.g. "resnet18/pooled". Default empty.</summary>
    public string FeatureName { get; init; } = "";

    /// <summary>How component signs are fixed. Default: <see cref="PcaSignConvention.LargestScorePositive"/>, as Debian's scikit-learn 1.2.</summary>
    public PcaSignConvention SignConvention { get; init; } = PcaSignConvention.LargestScorePositive;

    /// <summary>Rows read and accumulated at a time; 0 (default): as many as fit in 32 MiB of float64.</summary>
    public int ChunkRows { get; init; }

    /// <summary>Threads for the covariance and projection kernels; -1 (default): one per core.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    /// <summary>
    /// Managed path: above this D the eigendecomposition runs <see cref="SymmetricEigen"/> (SIMD Householder, QL,
    /// inverse iteration for the kept components only) instead of MathNet's all-vectors EVD, which is O(D^3) scalar
    /// code (about 4 s at D=1024 here, minutes at 4096). Default 512.
    /// </summary>
    public int MathNetMaxDimension { get; init; } = 512;

    /// <summary>Which code runs the numerics. Default <see cref="PcaBackend.Auto"/>.</summary>
    public PcaBackend Backend { get; init; } = PcaBackend.Auto;

    /// <summary>OpenBLAS library to try instead of <see cref="OpenBlas.DefaultLibrary"/>. Default null.</summary>
    public string? OpenBlasLibrary { get; init; }
}

/// <summary>Progress of a fit, reported after every chunk.</summary>
/// <param name="Stage">"covariance", "eigen" or "signs".</param>
/// <param name="RowsDone">Rows processed in this stage.</param>
/// <param name="RowsTotal">Rows in the data.</param>
/// <param name="Elapsed">Time since the fit started.</param>
public sealed record PcaFitProgress(string Stage, long RowsDone, long RowsTotal, TimeSpan Elapsed);

/// <summary>What a fit did and how long each step took.</summary>
public sealed record PcaFitInfo
{
    /// <summary>Code that computed X^T X: "managed-simd (Vector512 x8, 4x4 tiles)" (or the Vector&lt;double&gt; width) or "openblas cblas_dsyrk (PATH)".</summary>
    public required string CovarianceBackend { get; init; }
    /// <summary>Code that computed the eigendecomposition: "mathnet-managed", "managed-simd householder+ql+inverse-iteration" or "openblas dsyevr (PATH)".</summary>
    public required string EigenBackend { get; init; }
    /// <summary>Why OpenBLAS was not used, when it was not; empty otherwise.</summary>
    public string OpenBlasStatus { get; init; } = "";
    /// <summary>
    /// max over kept axes of |variance of the training scores - explained_variance| / largest explained_variance, from
    /// the sign pass (a check on the eigendecomposition against the data; fits fail above 1e-6). NaN without that pass.
    /// </summary>
    public double VarianceCheck { get; init; } = double.NaN;
    /// <summary>Rows fitted.</summary>
    public long Rows { get; init; }
    /// <summary>Floats per row.</summary>
    public int Dimension { get; init; }
    /// <summary>Rows per chunk.</summary>
    public int ChunkRows { get; init; }
    /// <summary>Passes over the data (2 with <see cref="PcaSignConvention.LargestScorePositive"/>).</summary>
    public int Passes { get; init; }
    /// <summary>Seconds in the mean/covariance pass (reading included).</summary>
    public double CovarianceSeconds { get; init; }
    /// <summary>Seconds in the eigendecomposition.</summary>
    public double EigenSeconds { get; init; }
    /// <summary>Seconds in the sign pass.</summary>
    public double SignSeconds { get; init; }
    /// <summary>Seconds in all.</summary>
    public double TotalSeconds { get; init; }
}

/// <summary>A fitted model and how it was fitted.</summary>
/// <param name="Model">The model.</param>
/// <param name="Info">Backends and timings.</param>
public sealed record PcaFitResult(PcaModel Model, PcaFitInfo Info);

/// <summary>
/// Fits a PCA the way scikit-learn's <c>PCA(svd_solver='full')</c> does, from the covariance instead of an SVD of the
/// data: mean and X^T X are accumulated in float64 over chunks (<see cref="StreamingCovariance"/>), the D x D
/// covariance is eigendecomposed, and a second pass fixes the signs as <c>svd_flip</c> does. Memory is one D x D
/// float64 matrix plus a few chunks, whatever the number of rows.
/// </summary>
public sealed class PcaFitter
{
    private readonly PcaFitOptions _options;

    /// <summary>Checks <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">Neither or both of Components and VarianceRatio, or one out of range.</exception>
    public PcaFitter(PcaFitOptions options)
    {
        if (options.Components is null == options.VarianceRatio is null)
            throw new ArgumentException("give exactly one of a component count (PcaFitOptions.Components) and a variance ratio (PcaFitOptions.VarianceRatio, e.g. 0.95)");
        if (options.Components is < 1) throw new ArgumentException($"component count {options.Components}: must be at least 1");
        if (options.VarianceRatio is { } v && !(v > 0 && v < 1)) throw new ArgumentException($"variance ratio {v}: must be between 0 and 1 (exclusive), e.g. 0.95");
        _options = options;
    }

    /// <summary>Fits on the rows of a float32 .npy file, streaming it in chunks (twice for score-based signs).</summary>
    public PcaFitResult Fit(string npyPath, IProgress<PcaFitProgress>? progress = null, CancellationToken cancellation = default)
    {
        using var reader = NpyReader.Open(npyPath);
        if (reader.RowLength > int.MaxValue / 8 || reader.RowLength < 1)
            throw new InvalidDataException($"{npyPath}: rows of {reader.RowLength} floats; PCA needs 1 to {int.MaxValue / 8}.");
        if (reader.RowShape.Count > 1 && reader.RowShape.Skip(1).Any(s => s != 1))
            throw new InvalidDataException($"{npyPath}: shape [{reader.Rows},{string.Join(",", reader.RowShape)}] holds spatial maps; PCA needs one vector per row. " +
                "Pool or flatten the maps first (PostProcessOptions.Pooling = Average or Flatten).");
        return FitCore(new FileRows(reader), npyPath, progress, cancellation);
    }

    /// <summary>Fits on rows held in memory (row-major, <paramref name="dimension"/> floats each).</summary>
    public PcaFitResult Fit(ReadOnlyMemory<float> rows, int dimension, IProgress<PcaFitProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        if (rows.Length % dimension != 0) throw new ArgumentException($"{rows.Length} floats is not a whole number of rows of {dimension}");
        return FitCore(new MemoryRows(rows, dimension), "the data", progress, cancellation);
    }

    private PcaFitResult FitCore(IRowSource source, string name, IProgress<PcaFitProgress>? progress, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var d = source.RowLength;
        var n = source.Rows;
        var maxComponents = (int)Math.Min(n, d);
        if (n < 2) throw new InvalidDataException($"{name}: {n} row(s); PCA needs at least 2.");
        if (_options.Components is { } requested && requested > maxComponents)
            throw new ArgumentException($"-k {requested}: {name} has {n} rows of {d} features, so at most {maxComponents} components.");

        var (blas, solver, blasStatus) = ChooseNumerics(d);

        var chunkRows = _options.ChunkRows > 0 ? _options.ChunkRows : Math.Max(16, (32 << 20) / (8 * d));
        chunkRows = (int)Math.Min(chunkRows, n);

        // Pass 1: mean and covariance (the accumulator's D x D sums become garbage once the covariance is out).
        var (mean, cov) = Accumulate(source, d, chunkRows, blas, progress, clock, cancellation);
        var covarianceSeconds = clock.Elapsed.TotalSeconds;
        var total = 0.0;
        for (var i = 0; i < d; i++) total += cov[i * d + i];
        if (!double.IsFinite(total) || mean.Any(v => !double.IsFinite(v)))
            throw new InvalidDataException($"{name}: contains NaN or infinite values (feature {Array.FindIndex(mean, v => !double.IsFinite(v))}); remove or fix those rows first.");
        if (!(total > 0)) throw new InvalidDataException($"{name}: every feature is constant (total variance {total}); nothing to fit.");

        // Eigendecomposition, largest first.
        progress?.Report(new PcaFitProgress("eigen", 0, n, clock.Elapsed));
        var eigenStart = clock.Elapsed.TotalSeconds;
        // Only the variance mode needs every eigenvalue; -k K asks the solver for the top K alone.
        var target = _options.VarianceRatio;
        var (values, vectors) = solver.Largest(cov, d, _options.Components ?? maxComponents,
            target is { } v ? all => ComponentsFor(all, total, v, maxComponents) : null);
        var k = _options.Components ?? ComponentsFor(values, total, target!.Value, maxComponents);
        var eigenBackend = solver.Description;
        cov = [];
        var eigenSeconds = clock.Elapsed.TotalSeconds - eigenStart;

        var explained = new double[k];
        var ratio = new double[k];
        for (var c = 0; c < k; c++)
        {
            explained[c] = Math.Max(0, values[c]);
            ratio[c] = explained[c] / total;
        }
        var kept = explained.Sum();
        var noise = k < maxComponents ? Math.Max(0, total - kept) / (maxComponents - k) : 0;
        var components = vectors.AsSpan(0, k * d).ToArray();

        // Signs.
        var signStart = clock.Elapsed.TotalSeconds;
        var passes = 1;
        var varianceCheck = double.NaN;
        if (_options.SignConvention == PcaSignConvention.LargestLoadingPositive)
        {
            for (var c = 0; c < k; c++)
            {
                var row = components.AsSpan(c * d, d);
                var best = 0;
                for (var i = 1; i < d; i++) if (Math.Abs(row[i]) > Math.Abs(row[best])) best = i;
                if (row[best] < 0) foreach (ref var x in row) x = -x;
            }
        }
        else
        {
            passes = 2;
            var unsigned = new PcaModel(mean, components, explained, ratio, noise, whiten: false, n);
            var (flip, scoreVariance) = LargestScoreSigns(unsigned, source, chunkRows, n, progress, clock, cancellation);
            for (var c = 0; c < k; c++)
                if (flip[c] < 0) foreach (ref var x in components.AsSpan(c * d, d)) x = -x;
            // Self-check of the eigendecomposition on the data itself: the variance of the scores on each axis is its
            // eigenvalue (v^T C v = lambda for a unit eigenvector); a broken BLAS or solver shows up here.
            varianceCheck = 0;
            for (var c = 0; c < k; c++) varianceCheck = Math.Max(varianceCheck, Math.Abs(scoreVariance[c] - explained[c]) / explained[0]);
            if (!(varianceCheck <= 1e-6))
                throw new InvalidDataException($"{name}: the eigendecomposition ({eigenBackend}) does not reproduce the data's variance " +
                    $"(deviation {varianceCheck:E1} of the largest variance); try the managed backend (PcaFitOptions.Backend = Managed).");
        }
        var signSeconds = clock.Elapsed.TotalSeconds - signStart;

        var model = new PcaModel(mean, components, explained, ratio, noise, _options.Whiten, n, _options.FeatureName, _options.SignConvention);
        var info = new PcaFitInfo
        {
            CovarianceBackend = blas is not null ? $"openblas cblas_dsyrk ({blas.LibraryPath})" : $"managed-simd ({DotProductTiles.Description}, 4x4 tiles)",
            EigenBackend = eigenBackend,
            OpenBlasStatus = blasStatus,
            VarianceCheck = varianceCheck,
            Rows = n,
            Dimension = d,
            ChunkRows = chunkRows,
            Passes = passes,
            CovarianceSeconds = covarianceSeconds,
            EigenSeconds = eigenSeconds,
            SignSeconds = signSeconds,
            TotalSeconds = clock.Elapsed.TotalSeconds,
        };
        return new PcaFitResult(model, info);
    }

    /// <summary>
    /// The one place that picks the numerics: OpenBLAS for the covariance and the eigendecomposition when it loads
    /// (<see cref="PcaBackend.Auto"/>, required by <see cref="PcaBackend.OpenBlas"/>); otherwise the managed SIMD
    /// covariance with MathNet's EVD up to <see cref="PcaFitOptions.MathNetMaxDimension"/> and <see cref="SymmetricEigen"/> above.
    /// </summary>
    private (OpenBlas? Blas, ISymmetricEigenSolver Solver, string BlasStatus) ChooseNumerics(int d)
    {
        OpenBlas? blas = null;
        var blasStatus = "";
        if (_options.Backend != PcaBackend.Managed)
        {
            blas = OpenBlas.TryLoad(out blasStatus, _options.OpenBlasLibrary);
            if (blas is null && _options.Backend == PcaBackend.OpenBlas) throw new SettingException("PcaFitOptions.Backend", $"OpenBLAS: {blasStatus}. Use the managed or auto backend.");
        }
        ISymmetricEigenSolver solver = blas is not null ? new OpenBlasEigenSolver(blas)
            : d <= _options.MathNetMaxDimension ? new MathNetEigenSolver()
            : new ManagedEigenSolver(_options.MaxDegreeOfParallelism);
        return (blas, solver, blasStatus);
    }

    private (double[] Mean, double[] Covariance) Accumulate(IRowSource source, int d, int chunkRows, OpenBlas? blas,
        IProgress<PcaFitProgress>? progress, Stopwatch clock, CancellationToken cancellation)
    {
        var covariance = new StreamingCovariance(d, _options.MaxDegreeOfParallelism, blas);
        source.ForEachChunk(chunkRows, cancellation, (chunk, done) =>
        {
            covariance.Add(chunk.Span);
            progress?.Report(new PcaFitProgress("covariance", done, source.Rows, clock.Elapsed));
        });
        var mean = covariance.Mean();
        return (mean, covariance.TakeCovariance());
    }

    /// <summary>scikit-learn's rule for a float n_components: the first k whose cumulative ratio exceeds <paramref name="target"/>.</summary>
    internal static int ComponentsFor(ReadOnlySpan<double> descendingValues, double total, double target, int maxComponents)
    {
        var cumulative = 0.0;
        var k = 0;
        for (; k < descendingValues.Length; k++)
        {
            cumulative += Math.Max(0, descendingValues[k]) / total;
            if (cumulative > target) break;
        }
        return Math.Min(k + 1, maxComponents);
    }

    /// <summary>For each component, the sign of the score with the largest magnitude over all rows (first one on ties), as numpy's argmax in svd_flip.</summary>
    /// <remarks>Also returns each component's score variance, sum(score^2)/(n-1), which must equal its eigenvalue.</remarks>
    private (double[] Signs, double[] ScoreVariance) LargestScoreSigns(PcaModel model, IRowSource source, int chunkRows, long n, IProgress<PcaFitProgress>? progress, Stopwatch clock, CancellationToken cancellation)
    {
        var k = model.Components;
        var d = model.Dimension;
        var bestAbs = new double[k];
        var bestSign = new double[k];
        Array.Fill(bestSign, 1.0);
        const int rowsPerTask = 256;
        var workers = _options.MaxDegreeOfParallelism > 0 ? _options.MaxDegreeOfParallelism : Environment.ProcessorCount;
        var scratch = model.ScratchFor(rowsPerTask);
        // Allocated once per pass: the memory of a fit must not grow with the number of rows.
        var centered = new double[workers][];
        var scores = new double[workers][];
        for (var w = 0; w < workers; w++) { centered[w] = new double[scratch.Centered]; scores[w] = new double[scratch.Scores]; }
        var local = new (double Abs, double Sign, double Squares)[(chunkRows + rowsPerTask - 1) / rowsPerTask * k];
        var squares = new double[k];
        source.ForEachChunk(chunkRows, cancellation, (chunk, done) =>
        {
            var m = chunk.Length / d;
            var tasks = (m + rowsPerTask - 1) / rowsPerTask;
            var next = 0;
            // Per task: (largest |score|, its sign) per component; merged in row order so the first occurrence wins.
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                int t;
                while ((t = Interlocked.Increment(ref next) - 1) < tasks)
                {
                    var r0 = t * rowsPerTask;
                    var rows = Math.Min(rowsPerTask, m - r0);
                    model.Project(chunk.Span.Slice(r0 * d, rows * d), rows, centered[w], scores[w]);
                    var stride = model.ScoreStride;
                    for (var c = 0; c < k; c++)
                    {
                        double abs = -1, sign = 1, sum = 0;
                        for (var r = 0; r < rows; r++)
                        {
                            var s = scores[w][r * stride + c];
                            sum += s * s;
                            if (Math.Abs(s) > abs) { abs = Math.Abs(s); sign = s < 0 ? -1 : 1; }
                        }
                        local[t * k + c] = (abs, sign, sum);
                    }
                }
            });
            for (var t = 0; t < tasks; t++)
            for (var c = 0; c < k; c++)
            {
                var (abs, sign, sum) = local[t * k + c];
                squares[c] += sum;
                if (abs > bestAbs[c]) (bestAbs[c], bestSign[c]) = (abs, sign);
            }
            progress?.Report(new PcaFitProgress("signs", done, n, clock.Elapsed));
        });
        return (bestSign, squares.Select(q => q / (n - 1)).ToArray());
    }

    /// <summary>Rows read chunk by chunk, from the start, as many times as asked.</summary>
    private interface IRowSource
    {
        long Rows { get; }
        int RowLength { get; }
        void ForEachChunk(int chunkRows, CancellationToken cancellation, ChunkAction action);
    }

    private delegate void ChunkAction(ReadOnlyMemory<float> rows, long rowsDone);

    private sealed class FileRows(NpyReader reader) : IRowSource
    {
        public long Rows => reader.Rows;
        public int RowLength => (int)reader.RowLength;

        // Double-buffered: the next chunk is read while the current one is used.
        private float[] _a = [], _b = [];

        public void ForEachChunk(int chunkRows, CancellationToken cancellation, ChunkAction action)
        {
            reader.Seek(0);
            var length = checked(chunkRows * RowLength);
            if (_a.Length != length) (_a, _b) = (new float[length], new float[length]); // reused by the second pass
            float[] current = _a, next = _b;
            var read = reader.ReadRows(current);
            long done = 0;
            while (read > 0)
            {
                cancellation.ThrowIfCancellationRequested();
                var pending = Task.Run(() => reader.ReadRows(next), cancellation);
                done += read;
                action(current.AsMemory(0, read * RowLength), done);
                var nextRead = pending.GetAwaiter().GetResult();
                (current, next) = (next, current);
                read = nextRead;
            }
            if (done != reader.Rows) throw new InvalidDataException($"{reader.Path}: ended after {done} of {reader.Rows} rows.");
        }
    }

    private sealed class MemoryRows(ReadOnlyMemory<float> data, int dimension) : IRowSource
    {
        public long Rows => data.Length / dimension;
        public int RowLength => dimension;

        public void ForEachChunk(int chunkRows, CancellationToken cancellation, ChunkAction action)
        {
            long done = 0;
            for (long r = 0; r < Rows; r += chunkRows)
            {
                cancellation.ThrowIfCancellationRequested();
                var m = (int)Math.Min(chunkRows, Rows - r);
                done += m;
                action(data.Slice((int)(r * dimension), m * dimension), done);
            }
        }
    }
}
