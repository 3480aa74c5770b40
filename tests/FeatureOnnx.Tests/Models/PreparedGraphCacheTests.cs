using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

/// <summary>
/// PreparedModel.Build keeps what it prepared (ConversionCache.PutPrepared) and reads it back for the same model files,
/// manifest, outputs and options: the same bytes and facts as a fresh build, never a stale graph.
/// </summary>
[Trait("Category", TestCategory.Slow)]
public sealed class PreparedGraphCacheTests
{
    private static readonly ModelCatalog Catalog = new();

    [Fact]
    public void A_cached_graph_equals_a_fresh_build_and_other_outputs_get_their_own_entry()
    {
        using var tmp = new Fixtures.TempDir();
        var cache = new ConversionCache(tmp.Path);
        var manifest = Catalog.Resolve("resnet18");
        var fresh = PreparedModel.Build(manifest, ["layer2"], Catalog);
        var first = PreparedModel.Build(manifest, ["layer2"], Catalog, new PrepareOptions { Cache = cache });
        var entries = Directory.GetFiles(tmp.Path, "*.prepared.onnx");
        Assert.Single(entries);
        Assert.True(File.Exists(entries[0] + ".json"));

        var second = PreparedModel.Build(manifest, ["layer2"], Catalog, new PrepareOptions { Cache = cache });
        Assert.Equal(fresh.OnnxBytes, first.OnnxBytes);
        Assert.Equal(fresh.OnnxBytes, second.OnnxBytes);
        Assert.Equal((fresh.PrunedNodeCount, fresh.WeightStorage, fresh.Warnings.Count), (second.PrunedNodeCount, second.WeightStorage, second.Warnings.Count));
        Assert.True(fresh.PrunedNodeCount > 0); // layer2 alone prunes layer3, layer4 and the pool: the count is carried over, not zero
        Assert.Equal(fresh.Outputs.Select(o => o.Name), second.Outputs.Select(o => o.Name));

        PreparedModel.Build(manifest, ["layer3"], Catalog, new PrepareOptions { Cache = cache });
        PreparedModel.Build(manifest, ["layer2"], Catalog, new PrepareOptions { Cache = cache, Uint8Input = true });
        Assert.Equal(3, Directory.GetFiles(tmp.Path, "*.prepared.onnx").Length);
    }

    [Fact]
    public void A_changed_model_file_is_prepared_again_and_a_broken_entry_is_ignored()
    {
        using var tmp = new Fixtures.TempDir();
        var source = Catalog.Resolve("resnet18");
        // A private copy of the manifest and its two ONNX files, so that one can be touched.
        var onnx = Catalog.LocateFile(source.Source, source);
        var prep = Catalog.LocateFile(source.Source.Prepend!, source);
        File.Copy(onnx, tmp.File("net.onnx"));
        File.Copy(prep, tmp.File("prep.onnx"));
        var manifest = source with
        {
            BaseDirectory = tmp.Path,
            ManifestPath = null,
            Source = source.Source with { File = tmp.File("net.onnx"), NuGet = null, Prepend = source.Source.Prepend! with { File = tmp.File("prep.onnx"), NuGet = null } },
        };
        var cacheDir = tmp.File("cache");
        var cache = new ConversionCache(cacheDir);
        PreparedModel.Build(manifest, ["layer1"], Catalog, new PrepareOptions { Cache = cache });
        Assert.Single(Directory.GetFiles(cacheDir, "*.prepared.onnx"));

        File.SetLastWriteTimeUtc(tmp.File("net.onnx"), DateTime.UtcNow.AddMinutes(-5));
        PreparedModel.Build(manifest, ["layer1"], Catalog, new PrepareOptions { Cache = cache });
        Assert.Equal(2, Directory.GetFiles(cacheDir, "*.prepared.onnx").Length);

        // Facts that do not describe the graph beside them (a copy cut short): rebuilt, not read.
        var entry = Directory.GetFiles(cacheDir, "*.prepared.onnx").OrderByDescending(File.GetLastWriteTimeUtc).First();
        var full = File.ReadAllBytes(entry);
        File.WriteAllBytes(entry, full[..1000]);
        var rebuilt = PreparedModel.Build(manifest, ["layer1"], Catalog, new PrepareOptions { Cache = cache });
        Assert.Equal(full, rebuilt.OnnxBytes);
        Assert.Equal(full, File.ReadAllBytes(entry));
    }
}

/// <summary>A cache folder keeps the most recently used entries of a kind, with their companions.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class CacheEvictionTests
{
    [Fact]
    public void Only_the_most_recently_used_entries_stay()
    {
        using var tmp = new Fixtures.TempDir();
        var start = DateTime.UtcNow.AddHours(-1);
        for (var i = 0; i < 10; i++)
        {
            var entry = tmp.File($"m.{i}.prepared.onnx");
            File.WriteAllText(entry, "graph");
            File.WriteAllText(entry + ".json", "facts");
            File.SetLastWriteTimeUtc(entry, start.AddMinutes(i));
        }
        File.WriteAllText(tmp.File("other.txt"), "not an entry");
        ConversionCache.Touch(tmp.File("m.0.prepared.onnx")); // used just now: the oldest by creation, the newest by use
        ConversionCache.KeepNewest(tmp.Path, "*.prepared.onnx");
        var kept = Directory.GetFiles(tmp.Path, "*.prepared.onnx").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["m.0.prepared.onnx", "m.3.prepared.onnx", "m.4.prepared.onnx", "m.5.prepared.onnx", "m.6.prepared.onnx",
                      "m.7.prepared.onnx", "m.8.prepared.onnx", "m.9.prepared.onnx"], kept);
        Assert.False(File.Exists(tmp.File("m.1.prepared.onnx.json")));
        Assert.False(File.Exists(tmp.File("m.2.prepared.onnx.json")));
        Assert.True(File.Exists(tmp.File("m.3.prepared.onnx.json")));
        Assert.True(File.Exists(tmp.File("other.txt")));
    }
}
