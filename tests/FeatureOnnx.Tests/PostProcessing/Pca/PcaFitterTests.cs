using Xunit;
using FeatureOnnx.Formats;
using FeatureOnnx.PostProcessing;
using Xunit.Abstractions;

namespace FeatureOnnx.Tests.PostProcessing;

[Trait("Category", TestCategory.Fast)]
public sealed class PcaFitterTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-6; // the bar: relative to sklearn, per row / column scale

    public static TheoryData<string> Cases => new() { "k10", "k10_whiten", "var95", "var90_whiten", "k40_all", "k5_whiten", "rank_deficient_k20_whiten", "rank_deficient_var99", "odd_k7_whiten" };

    private static PcaFitOptions OptionsFor(Dictionary<string, NpyArray> reference, PcaBackend backend = PcaBackend.Managed) => new()
    {
        Components = reference["is_ratio"].ToBoolean() ? null : (int)reference["n_components_param"].ToDoubles()[0],
        VarianceRatio = reference["is_ratio"].ToBoolean() ? reference["n_components_param"].ToDoubles()[0] : null,
        Whiten = reference["whiten"].ToBoolean(),
        Backend = backend,
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fit_matches_scikit_learn(string name)
    {
        var reference = Fixtures.Npz($"case_{name}.npz");
        var data = reference["data"].ToString();
        var fit = new PcaFitter(OptionsFor(reference)).Fit(Fixtures.Path($"features_{data}.npy"));
        var model = fit.Model;
        var k = (int)reference["n_components"].ToInt64();
        Assert.Equal(k, model.Components);
        Assert.Equal(reference["whiten"].ToBoolean(), model.Whiten);

        var errors = new Dictionary<string, double>
        {
            ["mean"] = Fixtures.RelativeError(model.Mean, reference["mean"].ToDoubles()),
            ["explained_variance"] = MaxElementwiseRelative(model.ExplainedVariance, reference["explained_variance"].ToDoubles()),
            ["explained_variance_ratio"] = MaxElementwiseRelative(model.ExplainedVarianceRatio, reference["explained_variance_ratio"].ToDoubles()),
            ["singular_values"] = MaxElementwiseRelative(model.SingularValues, reference["singular_values"].ToDoubles()),
            ["components (signs included)"] = Fixtures.RelativeError(model.ComponentMatrix, reference["components"].ToDoubles(), model.Dimension),
        };
        var noise = reference["noise_variance"].ToDoubles()[0];
        errors["noise_variance"] = noise == 0 ? Math.Abs(model.NoiseVariance) : Math.Abs(model.NoiseVariance - noise) / noise;

        foreach (var (set, key) in new[] { ($"features_{data}.npy", "transformed"), ($"test_{data}.npy", "transformed_test") })
        {
            var (rows, n, _) = Fixtures.Features(set);
            var projected = new float[n * k];
            model.Transform(rows, projected);
            errors[key] = Fixtures.ColumnRelativeError(Fixtures.ToDoubles(projected), reference[key].ToDoubles(), k);
        }
        errors["self-check (score variance vs eigenvalue)"] = fit.Info.VarianceCheck;
        foreach (var (what, error) in errors) output.WriteLine($"{name} {what}: max relative error {error:E2}");
        foreach (var (what, error) in errors) Assert.True(error <= Tolerance, $"{name} {what}: {error:E2} > {Tolerance:E0}");
    }

    [Fact]
    public void Loading_based_signs_match_svd_flip_v_based()
    {
        var reference = Fixtures.Npz("case_k10.npz");
        var model = new PcaFitter(OptionsFor(reference) with { SignConvention = PcaSignConvention.LargestLoadingPositive })
            .Fit(Fixtures.Path("features_300x64.npy")).Model;
        var expected = reference["components_v_based"].ToDoubles();
        Assert.True(Fixtures.RelativeError(model.ComponentMatrix, expected, model.Dimension) <= Tolerance);
        Assert.Equal(PcaSignConvention.LargestLoadingPositive, model.SignConvention);
        // The two conventions disagree on some axis of this data, so the test tells them apart.
        Assert.NotEqual(reference["components"].ToDoubles(), expected);
    }

    [Fact]
    public void Streaming_in_tiny_chunks_equals_one_chunk()
    {
        var path = Fixtures.Path("features_200x40.npy");
        var options = new PcaFitOptions { Components = 8, Whiten = true, Backend = PcaBackend.Managed };
        var one = new PcaFitter(options with { ChunkRows = 200 }).Fit(path);
        var tiny = new PcaFitter(options with { ChunkRows = 7 }).Fit(path);
        Assert.Equal(200, one.Info.ChunkRows);
        Assert.Equal(7, tiny.Info.ChunkRows);
        Assert.True(Fixtures.RelativeError(tiny.Model.ComponentMatrix, one.Model.ComponentMatrix.ToArray(), 40) < 1e-10);
        Assert.True(MaxElementwiseRelative(tiny.Model.ExplainedVariance, one.Model.ExplainedVariance.ToArray()) < 1e-10);
        Assert.True(Fixtures.RelativeError(tiny.Model.Mean, one.Model.Mean.ToArray()) < 1e-12);
        // ... and both still match sklearn (k5_whiten is the same data; its first 5 axes are ours).
        var reference = Fixtures.Npz("case_k5_whiten.npz");
        Assert.True(Fixtures.RelativeError(tiny.Model.ComponentMatrix[..(5 * 40)], reference["components"].ToDoubles(), 40) <= Tolerance);
    }

    [Fact]
    public void Fit_from_memory_equals_fit_from_file()
    {
        var (data, _, d) = Fixtures.Features("features_300x64.npy");
        var options = new PcaFitOptions { VarianceRatio = 0.95, Backend = PcaBackend.Managed };
        var fromMemory = new PcaFitter(options with { ChunkRows = 64 }).Fit(data.AsMemory(), d).Model;
        var fromFile = new PcaFitter(options).Fit(Fixtures.Path("features_300x64.npy")).Model;
        Assert.Equal(fromFile.Components, fromMemory.Components);
        Assert.True(Fixtures.RelativeError(fromMemory.ComponentMatrix, fromFile.ComponentMatrix.ToArray(), d) < 1e-10);
    }

    [Fact]
    public void Feature_maps_are_refused_with_the_pooling_fix()
    {
        var dir = Directory.CreateTempSubdirectory("featureonnx-pca-").FullName;
        try
        {
            var maps = Path.Combine(dir, "maps.npy");
            File.WriteAllBytes(maps, [.. NpyFormat.Header("<f4", [3, 2, 2, 2]), .. new byte[96]]);
            var e = Assert.Throws<InvalidDataException>(() => new PcaFitter(new PcaFitOptions { Components = 1 }).Fit(maps));
            Assert.Contains("Pool or flatten the maps first (PostProcessOptions.Pooling = Average or Flatten)", e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Variance_ratio_rule_is_sklearns_searchsorted_right_plus_one()
    {
        double[] values = [5, 3, 2]; // ratios 0.5, 0.3, 0.2; cumulative 0.5, 0.8, 1.0
        Assert.Equal(1, PcaFitter.ComponentsFor(values, 10, 0.49, 3));
        Assert.Equal(2, PcaFitter.ComponentsFor(values, 10, 0.5, 3)); // equal is not enough: side='right'
        Assert.Equal(2, PcaFitter.ComponentsFor(values, 10, 0.79, 3));
        Assert.Equal(3, PcaFitter.ComponentsFor(values, 10, 0.81, 3));
    }

    [SkippableFact]
    public void OpenBlas_backend_matches_scikit_learn_when_installed()
    {
        var library = Environment.GetEnvironmentVariable("FEATUREONNX_TEST_OPENBLAS");
        Skip.If(OpenBlas.TryLoad(out var why, library) is null, $"OpenBLAS not available: {why}");
        foreach (var name in new[] { "k10_whiten", "var95", "k40_all", "odd_k7_whiten", "rank_deficient_var99" })
        {
            var reference = Fixtures.Npz($"case_{name}.npz");
            var data = reference["data"].ToString();
            var fit = new PcaFitter(OptionsFor(reference, PcaBackend.OpenBlas) with { OpenBlasLibrary = library }).Fit(Fixtures.Path($"features_{data}.npy"));
            Assert.StartsWith("openblas", fit.Info.CovarianceBackend);
            Assert.StartsWith("openblas", fit.Info.EigenBackend);
            var components = Fixtures.RelativeError(fit.Model.ComponentMatrix, reference["components"].ToDoubles(), fit.Model.Dimension);
            var ratio = MaxElementwiseRelative(fit.Model.ExplainedVarianceRatio, reference["explained_variance_ratio"].ToDoubles());
            output.WriteLine($"openblas {name}: components {components:E2}, explained_variance_ratio {ratio:E2}");
            Assert.True(components <= Tolerance && ratio <= Tolerance);
        }
    }

    [Fact]
    public void Options_are_checked()
    {
        Assert.Throws<ArgumentException>(() => new PcaFitter(new PcaFitOptions()));
        Assert.Throws<ArgumentException>(() => new PcaFitter(new PcaFitOptions { Components = 3, VarianceRatio = 0.9 }));
        Assert.Throws<ArgumentException>(() => new PcaFitter(new PcaFitOptions { VarianceRatio = 1.0 }));
        var tooMany = Assert.Throws<ArgumentException>(() => new PcaFitter(new PcaFitOptions { Components = 41 }).Fit(Fixtures.Path("features_200x40.npy")));
        Assert.Contains("at most 40", tooMany.Message);
    }

    [Fact]
    public void Nan_and_constant_data_are_refused_with_the_reason()
    {
        var (data, _, d) = Fixtures.Features("features_200x40.npy");
        data[17 * d + 3] = float.NaN;
        var e = Assert.Throws<InvalidDataException>(() => new PcaFitter(new PcaFitOptions { Components = 2 }).Fit(data.AsMemory(), d));
        Assert.Contains("NaN", e.Message);
        e = Assert.Throws<InvalidDataException>(() => new PcaFitter(new PcaFitOptions { Components = 1 }).Fit(new float[10 * 4].AsMemory(), 4));
        Assert.Contains("constant", e.Message);
    }

    private static double MaxElementwiseRelative(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = 0.0;
        for (var i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / Math.Abs(expected[i]));
        return worst;
    }
}
