using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

/// <summary>Converted graphs kept by content hash: reused, keyed by what was prepared, and kept elsewhere when the model's folder is not writable.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class ConversionCacheTests
{
    private static readonly ModelCatalog Catalog = new();

    private static PreparedModel Fp16(ModelManifest manifest, string output, ConversionCache cache) =>
        PreparedModel.Build(manifest, [output], Catalog, new PrepareOptions { Precision = ModelPrecision.Fp16, Cache = cache });

    [Fact]
    public void Second_preparation_reads_the_cached_graph_and_other_outputs_get_their_own_file()
    {
        using var tmp = new Fixtures.TempDir();
        var cache = new ConversionCache(tmp.Path);
        var manifest = Catalog.Resolve("resnet18");
        var first = Fp16(manifest, "pooled", cache);
        Assert.NotNull(first.CachedAt);
        Assert.StartsWith(tmp.Path, first.CachedAt);
        var written = File.GetLastWriteTimeUtc(first.CachedAt!);
        var second = Fp16(manifest, "pooled", cache);
        Assert.Equal(first.CachedAt, second.CachedAt);
        Assert.Equal(written, File.GetLastWriteTimeUtc(second.CachedAt!));
        Assert.Equal(first.OnnxBytes, second.OnnxBytes);
        Assert.Equal(first.Conversion!.ToJson(), second.Conversion!.ToJson()); // read back from the cached file's metadata
        var other = Fp16(manifest, "layer1", cache);
        Assert.NotEqual(first.CachedAt, other.CachedAt);
        Assert.Equal(2, Directory.GetFiles(tmp.Path, "resnet18.*.onnx").Length);
    }

    [Fact]
    public void Unwritable_model_folder_falls_back_to_the_user_cache_folder()
    {
        using var tmp = new Fixtures.TempDir();
        var modelDir = Directory.CreateDirectory(tmp.File("model")).FullName;
        File.Copy(Catalog.Resolve("resnet18").ManifestPath!, Path.Combine(modelDir, "resnet18.json"));
        // a file where the cache folder would go: the folder cannot be made (as in a read-only model folder; tests run as root)
        File.WriteAllText(Path.Combine(modelDir, ConversionCache.FolderName), "");
        var user = tmp.File("user");
        var manifest = ModelManifest.Load(Path.Combine(modelDir, "resnet18.json"));
        var prepared = Fp16(manifest, "pooled", new ConversionCache(userDirectory: user));
        Assert.StartsWith(user, prepared.CachedAt);
        Assert.True(File.Exists(prepared.CachedAt));
    }

    [Fact]
    public void Next_to_the_model_when_its_folder_is_writable()
    {
        using var tmp = new Fixtures.TempDir();
        File.Copy(Catalog.Resolve("resnet18").ManifestPath!, tmp.File("resnet18.json"));
        var prepared = Fp16(ModelManifest.Load(tmp.File("resnet18.json")), "pooled", new ConversionCache(userDirectory: tmp.File("user")));
        Assert.Equal(Path.Combine(tmp.Path, ConversionCache.FolderName), Path.GetDirectoryName(prepared.CachedAt));
    }
}
