using FeatureOnnx.Pipeline;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>Listing, shard selection and resume selection shared by both extraction paths.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class InputSelectionTests
{
    private static InputListing Listing(string[] items, params InputProblem[] problems) =>
        new(items.Select(k => new InputItem(k, "/nowhere/" + k)).ToList(), problems, 0);

    [Fact]
    public void Shards_select_the_hand_computed_owners()
    {
        // FNV-1a 64 published vectors: "" = cbf29ce484222325, "a" = af63dc4c8601ec8c, "foobar" = 85944171f73967e8.
        // Mod 2 they are 1, 0, 0; mod 3 (by hand: digit sums of the hex values) 2, 1, 0.
        var listing = Listing(["", "a", "foobar"], new InputProblem("a", "unreadable"), new InputProblem("", FolderSource.NotAnImage));
        Assert.Equal(["a", "foobar"], InputSelection.Select(listing, new Shard(0, 2)).Items.Select(i => i.Key));
        Assert.Equal([""], InputSelection.Select(listing, new Shard(1, 2)).Items.Select(i => i.Key));
        Assert.Equal(["foobar"], InputSelection.Select(listing, new Shard(0, 3)).Items.Select(i => i.Key));
        Assert.Equal(["a"], InputSelection.Select(listing, new Shard(1, 3)).Items.Select(i => i.Key));
        var third = InputSelection.Select(listing, new Shard(2, 3));
        Assert.Equal([""], third.Items.Select(i => i.Key));
        // Problems follow their keys: the non-image "" is shard 2's, the unreadable "a" shard 1's.
        Assert.Equal([FolderSource.NotAnImage], third.Problems.Select(p => p.Reason));
        Assert.Equal(1, third.ListedNonImageFiles);
        Assert.Equal(["unreadable"], InputSelection.Select(listing, new Shard(1, 3)).Problems.Select(p => p.Reason));
        Assert.Equal("2/3", third.Shard.ToString());
    }

    [Fact]
    public async Task A_listed_folder_is_split_into_disjoint_shards_that_cover_it()
    {
        using var tmp = new Fixtures.TempDir();
        foreach (var f in Directory.EnumerateFiles(Fixtures.PathOf("photos")))
            File.Copy(f, tmp.File(Path.GetFileName(f)));
        var all = await InputSelection.ListAsync([tmp.Path], InputFile.DefaultMaxFileBytes, Shard.All, CancellationToken.None);
        var shards = new List<InputSelection>();
        for (var i = 0; i < 3; i++) shards.Add(await InputSelection.ListAsync([tmp.Path], InputFile.DefaultMaxFileBytes, new Shard(i, 3), CancellationToken.None));
        var keys = shards.SelectMany(s => s.Items.Concat<object>(s.Problems)).Select(o => o is InputItem i ? i.Key : ((InputProblem)o).Key).ToList();
        Assert.Equal(all.Items.Count + all.Problems.Count, keys.Count);
        Assert.Equal(all.Items.Select(i => i.Key).Concat(all.Problems.Select(p => p.Key)).Order(StringComparer.Ordinal), keys.Order(StringComparer.Ordinal));
        Assert.All(shards, s => Assert.All(s.Items, i => Assert.Equal(s.Shard.Index, (int)(Shard.Fnv1a64(i.Key) % 3))));
        // SOURCES.md is not an image: listed as such in one shard, and counted apart from failures.
        Assert.Equal(1, shards.Sum(s => s.ListedNonImageFiles));
    }

    [Fact]
    public void Resume_takes_out_what_was_accounted_for_but_keeps_the_non_image_count()
    {
        var listing = Listing(["a", "b", "c"], new InputProblem("d", FolderSource.NotAnImage), new InputProblem("e", "unreadable"));
        var pending = InputSelection.Select(listing, Shard.All).Without(new HashSet<string> { "a", "d" });
        Assert.Equal(["b", "c"], pending.Items.Select(i => i.Key));
        Assert.Equal(["e"], pending.Problems.Select(p => p.Key));
        Assert.Equal(1, pending.ListedNonImageFiles); // "d" is among the resumed run's committed error lines
    }

    [Fact]
    public async Task An_input_without_any_image_is_refused_naming_it()
    {
        using var tmp = new Fixtures.TempDir();
        File.WriteAllText(tmp.File("notes.txt"), "no image here");
        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => InputSelection.ListAsync([tmp.Path], InputFile.DefaultMaxFileBytes, new Shard(0, 4), CancellationToken.None));
        Assert.Contains(tmp.Path, e.Message);
        Assert.Contains("1 file(s) without an image extension skipped", e.Message);
    }

    [Fact]
    public void Read_failures_become_errors_csv_reasons()
    {
        var item = new InputItem("k", "/nowhere/k.jpg");
        Assert.Null(InputSelection.Read(item, 10, (_, _) => throw new FileNotFoundException("x"), out var vanished));
        Assert.Equal("file vanished before it could be read", vanished);
        InputSelection.Read(item, 10, (_, _) => throw new UnauthorizedAccessException("denied"), out var denied);
        Assert.Equal("unreadable: denied", denied);
        InputSelection.Read(item, 10, (_, _) => throw new InvalidOperationException("odd"), out var odd);
        Assert.Equal("read failure (InvalidOperationException): odd", odd);
        Assert.Equal([1, 2], InputSelection.Read(item, 10, (_, max) => [1, (byte)(max / 5)], out var none));
        Assert.Null(none);
    }
}
