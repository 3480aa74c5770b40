using Xunit;
using FeatureOnnx.PostProcessing;
using FeatureOnnx.Formats;

namespace FeatureOnnx.Tests.PostProcessing;

[Trait("Category", TestCategory.Fast)]
public sealed class PostProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("featureonnx-post-").FullName;
    private readonly Dictionary<string, NpyArray> _ref = Fixtures.Npz("postprocess.npz");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private float[] Maps => _ref["maps"].ToDoubles().Select(v => (float)v).ToArray();

    [Theory]
    [InlineData(PoolingMode.Average, "avg", 1e-7)]
    [InlineData(PoolingMode.Max, "max", 0)]
    [InlineData(PoolingMode.Flatten, "flatten", 0)]
    public void Pooling_matches_numpy(PoolingMode mode, string key, double tolerance)
    {
        long[] shape = [8, 3, 4];
        var outShape = SpatialPooling.OutputRowShape(shape, mode);
        Assert.Equal(mode == PoolingMode.Flatten ? [96L] : [8L], outShape);
        var output = new float[5 * outShape[0]];
        SpatialPooling.Apply(Maps, shape, mode, output);
        var expected = _ref[key].ToDoubles();
        Assert.Equal(expected.Length, output.Length);
        for (var i = 0; i < output.Length; i++)
            Assert.True(Math.Abs(output[i] - expected[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])), $"{key}[{i}]: {output[i]} vs {expected[i]}");
    }

    [Fact]
    public void L2_matches_numpy_and_keeps_zero_rows()
    {
        var rows = _ref["l2_in"].ToDoubles().Select(v => (float)v).ToArray();
        L2Normalize.Rows(rows, 16);
        var expected = _ref["l2_out"].ToDoubles();
        for (var i = 0; i < rows.Length; i++) Assert.True(Math.Abs(rows[i] - expected[i]) <= 1e-7, $"[{i}] {rows[i]} vs {expected[i]}");
        Assert.All(rows.AsSpan(4 * 16, 16).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Average_pool_then_l2_through_the_processor()
    {
        var processor = new FeaturePostProcessor(new PostProcessOptions { Pooling = PoolingMode.Average, L2 = true }, [8, 3, 4]);
        Assert.Equal([8L], processor.OutputRowShape);
        var output = new float[5 * 8];
        processor.Process(Maps, output);
        var expected = _ref["avg_l2"].ToDoubles();
        for (var i = 0; i < output.Length; i++) Assert.True(Math.Abs(output[i] - expected[i]) <= 1e-7, $"[{i}] {output[i]} vs {expected[i]}");
    }

    [Fact]
    public void ProcessFile_with_pca_writes_sklearns_transform()
    {
        var reference = Fixtures.Npz("case_k10.npz");
        var model = new PcaFitter(new PcaFitOptions { Components = 10, Backend = PcaBackend.Managed }).Fit(Fixtures.Path("features_300x64.npy")).Model;
        var target = Path.Combine(_dir, "out.npy");
        var rows = FeaturePostProcessor.ProcessFile(new PostProcessOptions { Pca = model }, Fixtures.Path("test_300x64.npy"), target, chunkRows: 7);
        Assert.Equal(50, rows);
        using var reader = NpyReader.Open(target);
        Assert.Equal([10L], reader.RowShape);
        var written = Fixtures.ToDoubles(reader.ReadAll());
        Assert.True(Fixtures.ColumnRelativeError(written, reference["transformed_test"].ToDoubles(), 10) <= 1e-6);
    }

    [Fact]
    public void Pca_dimension_mismatch_says_how_to_fix_it()
    {
        var model = new PcaFitter(new PcaFitOptions { Components = 3, Backend = PcaBackend.Managed }).Fit(Fixtures.Path("features_200x40.npy")).Model;
        var e = Assert.Throws<ArgumentException>(() => new FeaturePostProcessor(new PostProcessOptions { Pca = model }, [8, 3, 4], "maps.npy"));
        Assert.Contains("maps.npy", e.Message);
        Assert.Contains("PostProcessOptions.Pooling = Average", e.Message);
    }
}
