using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Tests.Pipeline;

[Trait("Category", TestCategory.Fast)]
public sealed class ShardingTests
{
    [Fact]
    public void Fnv1a_matches_the_published_test_vectors()
    {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo reference): "" and "a".
        Assert.Equal(0xcbf29ce484222325UL, Shard.Fnv1a64(""));
        Assert.Equal(0xaf63dc4c8601ec8cUL, Shard.Fnv1a64("a"));
        Assert.Equal(0x85944171f73967e8UL, Shard.Fnv1a64("foobar"));
    }

    [Fact]
    public void Shards_partition_the_inputs_whatever_their_order()
    {
        var keys = Enumerable.Range(0, 1000).Select(i => $"/data/img_{i:00000}.jpg").ToList();
        var shards = Enumerable.Range(0, 4).Select(i => new Shard(i, 4)).ToList();
        var owners = keys.Select(k => shards.Count(s => s.Contains(k))).ToList();
        Assert.All(owners, n => Assert.Equal(1, n));
        // A hash split of 1000 keys into 4: binomial sd 13.7 around 250, so 200..300 is 3.6 sd either side.
        Assert.All(shards, s => Assert.InRange(keys.Count(s.Contains), 200, 300));
        var shuffled = keys.OrderBy(k => Shard.Fnv1a64(k + "x")).ToList();
        Assert.Equal(keys.Where(shards[2].Contains).Order(), shuffled.Where(shards[2].Contains).Order());
    }

    [Fact]
    public void Auto_reads_kubernetes_then_slurm()
    {
        Assert.Equal(new Shard(3, 8), Shard.Parse("auto", n => n switch { "JOB_COMPLETION_INDEX" => "3", "JOB_COMPLETIONS" => "8", _ => null }));
        Assert.Equal(new Shard(1, 4), Shard.Parse("auto", n => n switch { "SLURM_ARRAY_TASK_ID" => "2", "SLURM_ARRAY_TASK_MIN" => "1", "SLURM_ARRAY_TASK_COUNT" => "4", _ => null }));
        Assert.Contains("give the shard as I/N", Assert.Throws<FormatException>(() => Shard.Parse("auto", _ => null)).Message);
        Assert.Equal(new Shard(2, 5), Shard.Parse("2/5"));
        Assert.Throws<FormatException>(() => Shard.Parse("5/5"));
    }
}
