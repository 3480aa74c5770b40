using FeatureOnnx.Benchmarking;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Models;
using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Tests.Runtime;

/// <summary>
/// CPU sessions keep ONNX Runtime's optimised graph (SessionSettings.OptimizedModelCache) and later sessions load it
/// with optimisation off: outputs bit-identical to a session that optimised the model itself, one entry per model and
/// level, a broken entry replaced.
/// </summary>
[Trait("Category", TestCategory.Slow)]
public sealed class OptimizedModelCacheTests
{
    private static readonly ModelCatalog Catalog = new();

    private static float[] Pooled(PreparedModel model, SessionSettings settings, float[] batch)
    {
        using var session = new FeatureSession(model, settings);
        using var outputs = session.Run(batch, 2);
        return outputs.Values("pooled").ToArray();
    }

    [Fact]
    public void A_session_from_the_cache_gives_the_same_bits_as_one_that_optimised_the_model()
    {
        using var tmp = new Fixtures.TempDir();
        var manifest = Catalog.Resolve("resnet18");
        var model = PreparedModel.Build(manifest, ["pooled"], Catalog);
        var batch = new float[2 * 3 * 224 * 224];
        var random = new Random(7);
        for (var i = 0; i < batch.Length; i++) batch[i] = (float)(random.NextDouble() * 4 - 2);

        var plain = Pooled(model, new SessionSettings { OptimizedModelCache = null }, batch);
        var cached = new SessionSettings { OptimizedModelCache = tmp.Path };
        var first = Pooled(model, cached, batch);   // optimises and saves
        var entry = Assert.Single(Directory.GetFiles(tmp.Path, "*.onnx"));
        var second = Pooled(model, cached, batch);  // loads the saved graph
        Assert.Equal(plain, first);
        Assert.Equal(plain, second);
        Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp"));

        // Another optimisation level is another graph.
        Pooled(model, cached with { OptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED }, batch);
        Assert.Equal(2, Directory.GetFiles(tmp.Path, "*.onnx").Length);

        // A broken entry (a copy cut short) is made again, and the result is still the same.
        File.WriteAllBytes(entry, File.ReadAllBytes(entry)[..4096]);
        Assert.Equal(plain, Pooled(model, cached, batch));
        Assert.True(new FileInfo(entry).Length > 1_000_000);
    }
}

/// <summary>bench times session creation without the optimised-graph cache, so every row does the same work.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class BenchmarkSessionsBypassTheCacheTests
{
    [Fact]
    public void A_bench_run_neither_reads_nor_writes_the_cache()
    {
        using var tmp = new Fixtures.TempDir();
        var catalog = new ModelCatalog();
        var manifest = catalog.Resolve("resnet18");
        var model = PreparedModel.Build(manifest, ["layer1"], catalog);
        var report = new ProviderBenchmark().Run(model, BenchmarkInputs.Random(manifest, 2, 1), new BenchmarkOptions
        {
            Providers = [ProviderChoice.Cpu], BatchSizes = [1, 2], WarmupIterations = 0, Iterations = 1,
            Session = new SessionSettings { OptimizedModelCache = tmp.Path },
        });
        Assert.Equal(2, report.Results.Count);
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }
}
