using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Tests.Pipeline;

[Trait("Category", TestCategory.Slow)]
public sealed class ShardMergeTests
{
    [Fact]
    public async Task Two_shards_merged_equal_one_unsharded_run()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Fixtures.PathOf("photos");
        async Task Run(string name, Shard shard) =>
            await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File(name), Shard = shard, Layers = ["pooled"] });
        await Run("all", Shard.All);
        await Run("s0", new Shard(0, 2));
        await Run("s1", new Shard(1, 2));
        var rows0 = File.ReadAllLines(Path.Combine(tmp.File("s0"), "index.csv")).Length - 1;
        var rows1 = File.ReadAllLines(Path.Combine(tmp.File("s1"), "index.csv")).Length - 1;
        Assert.Equal(33, rows0 + rows1);
        Assert.True(rows0 > 5 && rows1 > 5);
        var merged = ShardMerge.Merge([tmp.File("s1"), tmp.File("s0")], tmp.File("merged"));
        Assert.Equal(33, merged.Extracted);
        Assert.Equal(File.ReadAllLines(Path.Combine(tmp.File("all"), "index.csv")), File.ReadAllLines(Path.Combine(tmp.File("merged"), "index.csv")));
        Assert.Equal(Fixtures.ReadFloatNpy(Path.Combine(tmp.File("all"), "pooled.npy")).Data, Fixtures.ReadFloatNpy(Path.Combine(tmp.File("merged"), "pooled.npy")).Data);
        var overlap = Assert.Throws<InvalidDataException>(() => ShardMerge.Merge([tmp.File("s0"), tmp.File("all")], tmp.File("bad")));
        Assert.Contains("overlapping shards", overlap.Message);
    }
}
