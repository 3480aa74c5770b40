using System.Runtime.CompilerServices;

namespace FeatureOnnx.PostProcessing;

/// <summary>
/// Mean and covariance of float32 rows accumulated in float64, one chunk at a time, so the data never has to be in
/// memory at once (memory: the D x D sums plus one chunk). Rows are shifted by the first chunk's mean before they
/// are multiplied, which keeps the sums free of the cancellation that <c>E[x x^T] - mean mean^T</c> suffers when the
/// mean is large against the spread. The X^T X step runs <see cref="DotProductTiles"/> over 64 x 64 blocks of the
/// upper triangle, in parallel; or OpenBLAS's <c>cblas_dsyrk</c> when a <see cref="OpenBlas"/> is given.
/// </summary>
public sealed class StreamingCovariance
{
    private const int Block = 64;   // features per parallel work unit (a Block x Block piece of the triangle)
    private const int DepthBlock = 512; // rows of a chunk per pass over a unit, so a unit's operands stay in L2
    private readonly int _dimension;
    private readonly int _paddedDimension;
    private readonly int _maxParallelism;
    private readonly OpenBlas? _blas;
    private readonly double[] _sum;
    private double[] _cross;
    private readonly (int I, int J)[] _units;
    private double[]? _shift;
    private double[] _transposed = [];

    /// <summary>A covariance accumulator of <paramref name="dimension"/> features, with managed numerics.</summary>
    /// <param name="dimension">Features per row.</param>
    /// <param name="maxDegreeOfParallelism">Threads for the rank updates; -1: one per core.</param>
    public StreamingCovariance(int dimension, int maxDegreeOfParallelism = -1) : this(dimension, maxDegreeOfParallelism, null) { }

    /// <summary>Starts empty sums for rows of <paramref name="dimension"/> floats.</summary>
    /// <param name="dimension">Floats per row (D).</param>
    /// <param name="maxDegreeOfParallelism">Threads for the X^T X step; -1 (default): one per core.</param>
    /// <param name="blas">OpenBLAS to run X^T X with (<c>cblas_dsyrk</c>); null (default): the managed SIMD kernel.</param>
    internal StreamingCovariance(int dimension, int maxDegreeOfParallelism, OpenBlas? blas)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        _dimension = dimension;
        _paddedDimension = DotProductTiles.RoundUp(dimension, 4);
        _maxParallelism = maxDegreeOfParallelism;
        _blas = blas;
        _sum = new double[_paddedDimension];
        _cross = new double[checked(_paddedDimension * _paddedDimension)];
        var blocks = (_paddedDimension + Block - 1) / Block;
        _units = [.. from j in Enumerable.Range(0, blocks) from i in Enumerable.Range(0, j + 1) select (i, j)];
    }

    /// <summary>Floats per row.</summary>
    public int Dimension => _dimension;

    /// <summary>Rows added so far.</summary>
    public long Count { get; private set; }

    /// <summary>Adds whole rows (row-major, <see cref="Dimension"/> floats each).</summary>
    public void Add(ReadOnlySpan<float> rows)
    {
        if (Count < 0) throw new InvalidOperationException("the covariance was taken; start a new accumulator");
        if (rows.Length % _dimension != 0) throw new ArgumentException($"{rows.Length} floats is not a whole number of rows of {_dimension}");
        var m = rows.Length / _dimension;
        if (m == 0) return;
        _shift ??= ChunkMean(rows, m);
        var stride = DotProductTiles.RoundUp(m, DotProductTiles.Width);
        if (stride % 512 == 0) stride += DotProductTiles.Width; // rows 4 KiB-multiples apart share L1 sets: break the pattern
        var needed = checked(_paddedDimension * stride);
        if (_transposed.Length < needed) _transposed = new double[needed];
        Transpose(rows, m, stride);
        if (_blas is not null) _blas.SyrkUpper(_transposed, _paddedDimension, stride, _cross);
        else AccumulateCross(stride);
        Count += m;
    }

    /// <summary>The mean, float64.</summary>
    public double[] Mean()
    {
        RequireRows(1);
        var mean = new double[_dimension];
        for (var i = 0; i < _dimension; i++) mean[i] = _shift![i] + _sum[i] / Count;
        return mean;
    }

    /// <summary>The covariance with the n-1 denominator (as numpy.cov and scikit-learn's explained_variance_), D x D row-major.</summary>
    public double[] Covariance()
    {
        RequireRows(2);
        int d = _dimension, p = _paddedDimension;
        var n = (double)Count;
        var delta = new double[d];
        for (var i = 0; i < d; i++) delta[i] = _sum[i] / n;
        var cov = new double[checked(d * d)];
        for (var i = 0; i < d; i++)
        for (var j = i; j < d; j++)
        {
            var v = (_cross[i * p + j] - n * delta[i] * delta[j]) / (n - 1);
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
        return cov;
    }

    /// <summary>
    /// As <see cref="Covariance"/>, but computed in place in the accumulator's own D x D sums, which are handed over
    /// (the array may be longer than D*D; row i starts at i*D). The accumulator cannot be used afterwards. Saves a
    /// D x D copy: 128 MB at D=4096.
    /// </summary>
    internal double[] TakeCovariance()
    {
        RequireRows(2);
        int d = _dimension, p = _paddedDimension;
        var n = (double)Count;
        var delta = new double[d];
        for (var i = 0; i < d; i++) delta[i] = _sum[i] / n;
        var c = _cross;
        for (var i = 0; i < d; i++)
        for (var j = i; j < d; j++)
            c[i * p + j] = (c[i * p + j] - n * delta[i] * delta[j]) / (n - 1);
        for (var i = 0; i < d; i++)
        for (var j = 0; j < i; j++)
            c[i * p + j] = c[j * p + i];
        if (p != d)
            for (var i = 1; i < d; i++) Array.Copy(c, i * p, c, i * d, d); // rows move towards the start: safe in order
        _transposed = [];
        Count = -1;
        return c;
    }

    private void RequireRows(int n)
    {
        if (Count < n) throw new InvalidOperationException($"{Count} row(s) added; at least {n} needed.");
    }

    private double[] ChunkMean(ReadOnlySpan<float> rows, int m)
    {
        var mean = new double[_dimension];
        for (var r = 0; r < m; r++)
        {
            var row = rows.Slice(r * _dimension, _dimension);
            for (var i = 0; i < _dimension; i++) mean[i] += row[i];
        }
        for (var i = 0; i < _dimension; i++) mean[i] /= m;
        return mean;
    }

    /// <summary>Writes (x - shift) column by column into <see cref="_transposed"/> (feature i: a run of <paramref name="stride"/> doubles, zero-padded) and adds to the sums.</summary>
    private unsafe void Transpose(ReadOnlySpan<float> rows, int m, int stride)
    {
        var d = _dimension;
        var shift = _shift!;
        fixed (float* src = rows)
        fixed (double* dst = _transposed)
        {
            var s = src;
            var t = dst;
            const int columns = 32;
            Parallel.For(0, (_paddedDimension + columns - 1) / columns, Options(), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (block) =>
            {
                int c0 = block * columns, c1 = Math.Min(c0 + columns, d);
                Span<double> sums = stackalloc double[columns];
                sums.Clear();
                for (var r = 0; r < m; r++)
                {
                    var row = s + (long)r * d;
                    for (var c = c0; c < c1; c++)
                    {
                        var v = row[c] - shift[c];
                        t[(long)c * stride + r] = v;
                        sums[c - c0] += v;
                    }
                }
                for (var c = c0; c < c1; c++)
                {
                    new Span<double>(t + (long)c * stride + m, stride - m).Clear();
                    _sum[c] += sums[c - c0];
                }
                for (var c = Math.Max(c0, d); c < Math.Min(c0 + columns, _paddedDimension); c++)
                    new Span<double>(t + (long)c * stride, stride).Clear();
            });
        }
    }

    private unsafe void AccumulateCross(int stride)
    {
        var p = _paddedDimension;
        fixed (double* yt = _transposed)
        fixed (double* cross = _cross)
        {
            var y = yt;
            var c = cross;
            Parallel.For(0, _units.Length, Options(), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (u) =>
            {
                var (ib, jb) = _units[u];
                int i0 = ib * Block, i1 = Math.Min(i0 + Block, p), j0 = jb * Block, j1 = Math.Min(j0 + Block, p);
                for (var k0 = 0; k0 < stride; k0 += DepthBlock)
                {
                    var len = Math.Min(DepthBlock, stride - k0);
                    for (var i = i0; i < i1; i += 4)
                    for (var j = ib == jb ? i : j0; j < j1; j += 4)
                        DotProductTiles.Tile4x4(y + (long)i * stride + k0, stride, y + (long)j * stride + k0, stride, len, c + (long)i * p + j, p);
                }
            });
        }
    }

    private ParallelOptions Options() => new() { MaxDegreeOfParallelism = _maxParallelism };
}
