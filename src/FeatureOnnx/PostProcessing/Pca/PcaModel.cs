using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using FeatureOnnx.Formats;

namespace FeatureOnnx.PostProcessing;

/// <summary>How the sign of each principal axis is fixed (an eigenvector is only defined up to sign).</summary>
public enum PcaSignConvention
{
    /// <summary>
    /// The training sample with the largest |score| on the axis scores positive: scikit-learn's
    /// <c>svd_flip(U, Vt)</c> with <c>u_based_decision=True</c>, which <c>PCA</c> uses up to 1.4 (Debian 12 ships 1.2.1).
    /// Costs a second pass over the data.
    /// </summary>
    LargestScorePositive,

    /// <summary>
    /// The largest |loading| of each component is positive: <c>svd_flip(..., u_based_decision=False)</c>, which
    /// scikit-learn's <c>PCA</c> uses from 1.5. One pass.
    /// </summary>
    LargestLoadingPositive,
}

/// <summary>
/// A fitted PCA, the same numbers scikit-learn's <c>PCA</c> keeps (<c>mean_</c>, <c>components_</c>,
/// <c>explained_variance_</c>, ...). <see cref="Transform"/> computes <c>(x - mean) components^T</c>, divided by
/// <c>sqrt(explained_variance)</c> when <see cref="Whiten"/> is set, in float64. Saved as .npz (docs/formats.md).
/// Immutable; <see cref="Transform"/> may be called from several threads at once.
/// </summary>
public sealed class PcaModel
{
    /// <summary>The value of the archive's <c>format</c> entry.</summary>
    public const string FormatName = "featureonnx.pca/1";

    private readonly double[] _mean;
    private readonly double[] _components;
    private readonly double[] _explainedVariance;
    private readonly double[] _explainedVarianceRatio;
    private readonly double[] _singularValues;
    private readonly double[] _weights; // components (scaled for whitening), padded to [RoundUp(k,4), RoundUp(D,Width)]
    private readonly int _paddedDimension;
    private readonly int _paddedComponents;

    /// <summary>Builds a model from its parts; <paramref name="components"/> is k x D row-major.</summary>
    public PcaModel(double[] mean, double[] components, double[] explainedVariance, double[] explainedVarianceRatio,
        double noiseVariance, bool whiten, long samplesSeen, string featureName = "", PcaSignConvention signConvention = PcaSignConvention.LargestScorePositive)
    {
        Dimension = mean.Length;
        Components = explainedVariance.Length;
        if (Dimension < 1 || Components < 1) throw new ArgumentException("a PCA needs at least one feature and one component");
        if (components.Length != (long)Components * Dimension) throw new ArgumentException($"components has {components.Length} values, expected {Components} x {Dimension}");
        if (explainedVarianceRatio.Length != Components) throw new ArgumentException("explained_variance_ratio and explained_variance differ in length");
        if (whiten && explainedVariance.Any(v => !(v > 0)))
            throw new ArgumentException($"whitening divides by sqrt(explained_variance) but component {Array.FindIndex(explainedVariance, v => !(v > 0))} has variance 0: keep fewer components.");
        _mean = mean;
        _components = components;
        _explainedVariance = explainedVariance;
        _explainedVarianceRatio = explainedVarianceRatio;
        _singularValues = explainedVariance.Select(v => Math.Sqrt(Math.Max(0, v) * (samplesSeen - 1))).ToArray();
        NoiseVariance = noiseVariance;
        Whiten = whiten;
        SamplesSeen = samplesSeen;
        FeatureName = featureName;
        SignConvention = signConvention;

        _paddedDimension = DotProductTiles.RoundUp(Dimension, DotProductTiles.Width);
        if (_paddedDimension % 512 == 0) _paddedDimension += DotProductTiles.Width; // keep tile rows off the same L1 sets
        _paddedComponents = DotProductTiles.RoundUp(Components, 4);
        _weights = new double[_paddedComponents * _paddedDimension];
        for (var c = 0; c < Components; c++)
        {
            var scale = whiten ? 1 / Math.Sqrt(explainedVariance[c]) : 1;
            for (var i = 0; i < Dimension; i++) _weights[c * _paddedDimension + i] = components[c * Dimension + i] * scale;
        }
    }

    /// <summary>Absolute path of the file <see cref="Load"/> read; null for a model built in memory.</summary>
    public string? SourcePath { get; private init; }

    /// <summary>SHA-256 (lower-case hex) of the bytes <see cref="Load"/> read; null for a model built in memory.</summary>
    public string? SourceSha256 { get; private init; }

    /// <summary>Floats per input row (D, <c>n_features_in_</c>).</summary>
    public int Dimension { get; }

    /// <summary>Floats per output row (k, <c>n_components_</c>).</summary>
    public int Components { get; }

    /// <summary>Per-feature mean of the training data (<c>mean_</c>), length D.</summary>
    public ReadOnlySpan<double> Mean => _mean;

    /// <summary>Principal axes, k x D row-major, by decreasing variance (<c>components_</c>).</summary>
    public ReadOnlySpan<double> ComponentMatrix => _components;

    /// <summary>Variance along each axis with the n-1 denominator (<c>explained_variance_</c>).</summary>
    public ReadOnlySpan<double> ExplainedVariance => _explainedVariance;

    /// <summary>Share of the total variance along each axis (<c>explained_variance_ratio_</c>).</summary>
    public ReadOnlySpan<double> ExplainedVarianceRatio => _explainedVarianceRatio;

    /// <summary>sqrt(explained_variance * (n-1)) (<c>singular_values_</c>).</summary>
    public ReadOnlySpan<double> SingularValues => _singularValues;

    /// <summary>Mean variance of the discarded axes (<c>noise_variance_</c>; 0 when none were discarded).</summary>
    public double NoiseVariance { get; }

    /// <summary>Outputs are divided by sqrt(explained_variance) (<c>whiten=True</c>).</summary>
    public bool Whiten { get; }

    /// <summary>Rows the model was fitted on (<c>n_samples_</c>).</summary>
    public long SamplesSeen { get; }

    /// <summary>Free text naming the features, e.g. "resnet18/pooled"; empty when unknown.</summary>
    public string FeatureName { get; }

    /// <summary>How the component signs were fixed.</summary>
    public PcaSignConvention SignConvention { get; }

    /// <summary>
    /// Projects whole rows: <paramref name="rows"/> holds n rows of <see cref="Dimension"/> floats,
    /// <paramref name="output"/> receives n rows of <see cref="Components"/> floats. Computed in float64, rounded once.
    /// </summary>
    public void Transform(ReadOnlySpan<float> rows, Span<float> output)
    {
        if (rows.Length % Dimension != 0)
            throw new ArgumentException($"{rows.Length} floats is not a whole number of rows of {Dimension} (the PCA's input dimension{(FeatureName.Length > 0 ? ", " + FeatureName : "")})");
        var n = rows.Length / Dimension;
        if (output.Length < (long)n * Components) throw new ArgumentException($"output holds {output.Length} floats, {n} rows of {Components} need {(long)n * Components}");
        const int rowsPerBlock = 64; // bounded scratch, whatever the batch
        var centered = ArrayPool<double>.Shared.Rent(rowsPerBlock * _paddedDimension);
        var scores = ArrayPool<double>.Shared.Rent(rowsPerBlock * _paddedComponents);
        try
        {
            for (var r0 = 0; r0 < n; r0 += rowsPerBlock)
            {
                var m = Math.Min(rowsPerBlock, n - r0);
                Project(rows.Slice(r0 * Dimension, m * Dimension), m, centered, scores);
                for (var r = 0; r < m; r++)
                for (var c = 0; c < Components; c++)
                    output[(r0 + r) * Components + c] = (float)scores[r * _paddedComponents + c];
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(centered);
            ArrayPool<double>.Shared.Return(scores);
        }
    }

    /// <summary>Float64 scores of <paramref name="m"/> rows into <paramref name="scores"/> (row stride: k rounded up to 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal unsafe void Project(ReadOnlySpan<float> rows, int m, double[] centered, double[] scores)
    {
        int d = Dimension, pd = _paddedDimension, pk = _paddedComponents;
        var pm = DotProductTiles.RoundUp(m, 4);
        for (var r = 0; r < pm; r++)
        {
            var dst = centered.AsSpan(r * pd, pd);
            if (r >= m) { dst.Clear(); continue; }
            var src = rows.Slice(r * d, d);
            for (var i = 0; i < d; i++) dst[i] = src[i] - _mean[i];
            dst[d..].Clear();
        }
        scores.AsSpan(0, pm * pk).Clear();
        fixed (double* a = centered)
        fixed (double* w = _weights)
        fixed (double* s = scores)
        {
            for (var r = 0; r < pm; r += 4)
            for (var c = 0; c < pk; c += 4)
                DotProductTiles.Tile4x4(a + r * pd, pd, w + c * pd, pd, pd, s + r * pk + c, pk);
        }
    }

    /// <summary>Row stride of <see cref="Project"/>'s scores.</summary>
    internal int ScoreStride => _paddedComponents;

    /// <summary>Scratch sizes <see cref="Project"/> needs for <paramref name="m"/> rows.</summary>
    internal (int Centered, int Scores) ScratchFor(int m) => (DotProductTiles.RoundUp(m, 4) * _paddedDimension, DotProductTiles.RoundUp(m, 4) * _paddedComponents);

    /// <summary>Writes the model to <paramref name="path"/> (.npz, atomically). numpy: <c>m = np.load(path)</c>.</summary>
    public void Save(string path)
    {
        NpzArchive.Write(path,
        [
            new("format", NpyArray.Of(FormatName)),
            new("mean", NpyArray.Of(_mean, Dimension)),
            new("components", NpyArray.Of(_components, Components, Dimension)),
            new("explained_variance", NpyArray.Of(_explainedVariance, Components)),
            new("explained_variance_ratio", NpyArray.Of(_explainedVarianceRatio, Components)),
            new("singular_values", NpyArray.Of(_singularValues, Components)),
            new("noise_variance", NpyArray.Of(NoiseVariance)),
            new("whiten", NpyArray.Of(Whiten)),
            new("n_samples", NpyArray.Of(SamplesSeen)),
            new("n_features", NpyArray.Of((long)Dimension)),
            new("n_components", NpyArray.Of((long)Components)),
            new("feature", NpyArray.Of(FeatureName)),
            new("sign_convention", NpyArray.Of(SignConvention == PcaSignConvention.LargestScorePositive ? "u_based" : "v_based")),
        ]);
    }

    /// <summary>Reads a model written by <see cref="Save"/> (or by numpy.savez with the same entries).</summary>
    /// <exception cref="InvalidDataException">Missing entries or inconsistent shapes; the message names the file.</exception>
    public static PcaModel Load(string path)
    {
        var a = NpzArchive.Read(path);
        NpyArray Get(string name) => a.TryGetValue(name, out var v) ? v
            : throw new InvalidDataException($"{path}: no '{name}' array; is it a PCA model from 'featureonnx pca fit'? (found: {string.Join(", ", a.Keys)})");
        try
        {
            var mean = Get("mean").ToDoubles();
            var components = Get("components");
            var variance = Get("explained_variance").ToDoubles();
            var ratio = a.TryGetValue("explained_variance_ratio", out var r) ? r.ToDoubles() : new double[variance.Length];
            if (components.Shape.Length != 2 || components.Shape[0] != variance.Length || components.Shape[1] != mean.Length)
                throw new InvalidDataException($"{path}: components has shape [{string.Join(",", components.Shape)}], expected [{variance.Length},{mean.Length}] (explained_variance x mean).");
            var signs = a.TryGetValue("sign_convention", out var s) && s.ToString() == "v_based" ? PcaSignConvention.LargestLoadingPositive : PcaSignConvention.LargestScorePositive;
            return new PcaModel(mean, components.ToDoubles(), variance, ratio,
                a.TryGetValue("noise_variance", out var nv) ? nv.ToDoubles()[0] : 0,
                a.TryGetValue("whiten", out var w) && w.ToBoolean(),
                a.TryGetValue("n_samples", out var ns) ? ns.ToInt64() : 0,
                a.TryGetValue("feature", out var f) ? f.ToString() : "",
                signs)
            {
                SourcePath = System.IO.Path.GetFullPath(path),
                SourceSha256 = Sha256Of(path),
            };
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    private static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }

    /// <summary>One line for logs: dims, variance kept, whitening.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"PCA {Dimension} -> {Components}{(Whiten ? " whitened" : "")}, {_explainedVarianceRatio.Sum():P2} of the variance, fitted on {SamplesSeen} rows{(FeatureName.Length > 0 ? " of " + FeatureName : "")}");
}
