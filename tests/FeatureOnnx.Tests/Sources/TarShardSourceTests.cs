using System.Formats.Tar;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Tests.Sources;

/// <summary>
/// The tar lister against archives written by .NET's own <see cref="TarWriter"/>; offsets are worked out by hand
/// from the format (a 512-byte header per member, data padded to 512 bytes).
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class TarShardSourceTests
{
    private static readonly byte[] Three = [1, 2, 3];
    private static readonly byte[] SixHundred = [.. Enumerable.Range(0, 600).Select(i => (byte)(i * 7))];

    private static string Write(string path, TarEntryFormat format, params (string Name, byte[]? Data)[] members)
    {
        using var tar = new TarWriter(File.Create(path), format);
        foreach (var (name, data) in members)
        {
            TarEntry entry = format switch
            {
                TarEntryFormat.Ustar => new UstarTarEntry(data is null ? TarEntryType.Directory : TarEntryType.RegularFile, name),
                TarEntryFormat.Gnu => new GnuTarEntry(data is null ? TarEntryType.Directory : TarEntryType.RegularFile, name),
                _ => new PaxTarEntry(data is null ? TarEntryType.Directory : TarEntryType.RegularFile, name),
            };
            if (data is not null) entry.DataStream = new MemoryStream(data);
            tar.WriteEntry(entry);
        }
        return path;
    }

    private static (List<InputItem> Items, List<InputProblem> Problems, int Skipped) List(string path, string key = "shard.tar")
    {
        var items = new List<InputItem>();
        var problems = new List<InputProblem>();
        var skipped = 0;
        TarShardSource.Enumerate(path, key, items, problems, ref skipped);
        return (items, problems, skipped);
    }

    [Fact]
    public void Image_members_are_listed_in_place_with_their_offsets_and_lengths()
    {
        using var tmp = new Fixtures.TempDir();
        var path = Write(tmp.File("shard.tar"), TarEntryFormat.Ustar,
            ("a.jpg", Three), ("dir/", null), ("dir/b.PNG", SixHundred), ("notes.txt", "notes"u8.ToArray()));
        var (items, problems, skipped) = List(path);

        // a.jpg: header 0, data 512 (3 bytes, padded to 1024); dir/: header 1024; dir/b.PNG: header 1536, data 2048.
        Assert.Equal(
            [new InputItem("shard.tar/a.jpg", path, 512, 3), new InputItem("shard.tar/dir/b.PNG", path, 2048, 600)],
            items);
        Assert.Equal(Three, items[0].ReadBytes());
        Assert.Equal(SixHundred, items[1].ReadBytes());
        Assert.Empty(problems);
        Assert.Equal(1, skipped); // notes.txt; a folder is not a skipped file
    }

    [Theory]
    [InlineData(TarEntryFormat.Ustar)] // the 155-byte prefix field
    [InlineData(TarEntryFormat.Gnu)]   // a ././@LongLink ('L') record
    [InlineData(TarEntryFormat.Pax)]   // a pax 'path' record
    public void Names_longer_than_100_bytes_are_recovered(TarEntryFormat format)
    {
        using var tmp = new Fixtures.TempDir();
        var name = new string('p', 120) + "/" + new string('n', 90) + ".jpg";
        var path = Write(tmp.File("long.tar"), format, (name, Three), ("short.png", Three));
        var (items, problems, _) = List(path);
        Assert.Empty(problems);
        Assert.Equal(["shard.tar/" + name, "shard.tar/short.png"], items.Select(i => i.Key));
        Assert.All(items, i => Assert.Equal(Three, i.ReadBytes()));
    }

    [Fact]
    public void A_corrupt_header_ends_the_listing_and_keeps_the_members_before_it()
    {
        using var tmp = new Fixtures.TempDir();
        var path = Write(tmp.File("corrupt.tar"), TarEntryFormat.Ustar, ("a.jpg", Three), ("b.jpg", Three), ("c.jpg", Three));
        var bytes = File.ReadAllBytes(path);
        bytes[1024] ^= 0x20; // first byte of b.jpg's name: the header checksum no longer matches
        File.WriteAllBytes(path, bytes);
        var (items, problems, _) = List(path);
        Assert.Equal(["shard.tar/a.jpg"], items.Select(i => i.Key));
        Assert.Equal("corrupt tar header at byte 1024; members listed before it are kept", Assert.Single(problems).Reason);
    }

    [Fact]
    public void A_member_cut_short_is_reported_by_name_and_one_cut_in_a_header_by_offset()
    {
        using var tmp = new Fixtures.TempDir();
        var full = File.ReadAllBytes(Write(tmp.File("full.tar"), TarEntryFormat.Ustar, ("a.jpg", Three), ("b.png", SixHundred)));

        var inData = tmp.File("in-data.tar");
        File.WriteAllBytes(inData, full[..(1536 + 100)]); // b.png's data starts at 1536
        var (items, problems, _) = List(inData);
        Assert.Equal(["shard.tar/a.jpg"], items.Select(i => i.Key));
        Assert.Equal(new InputProblem("shard.tar/b.png", "truncated tar member: the shard ends inside its data"), Assert.Single(problems));

        var inHeader = tmp.File("in-header.tar");
        File.WriteAllBytes(inHeader, full[..(1024 + 200)]); // b.png's header starts at 1024
        (items, problems, _) = List(inHeader);
        Assert.Equal(["shard.tar/a.jpg"], items.Select(i => i.Key));
        Assert.Equal("truncated tar shard: ends inside a header at byte 1024; members listed before it are kept", Assert.Single(problems).Reason);
    }

    [Fact]
    public void A_missing_shard_is_one_problem()
    {
        using var tmp = new Fixtures.TempDir();
        var (items, problems, _) = List(tmp.File("absent.tar"), "absent.tar");
        Assert.Empty(items);
        Assert.StartsWith("unreadable tar shard: ", Assert.Single(problems).Reason);
    }

    [Theory]
    [InlineData("a/b.jpg", true)]
    [InlineData("a..b/c.jpg", true)]
    [InlineData("../x.jpg", false)]
    [InlineData("a/../../x.jpg", false)]
    [InlineData("a\\..\\x.jpg", false)]
    [InlineData("/etc/x.jpg", false)]
    [InlineData("\\x.jpg", false)]
    [InlineData("C:x.jpg", false)]
    [InlineData("", false)]
    public void Absolute_names_and_parent_steps_are_unsafe(string name, bool safe) => Assert.Equal(safe, TarShardSource.IsSafe(name));

    [Theory]
    [InlineData("shard-000.tar", true)]
    [InlineData("SHARD.TAR", true)]
    [InlineData("shard.tar.gz", false)]
    [InlineData("shard.tgz", false)]
    public void Only_dot_tar_names_a_shard(string path, bool isTar) => Assert.Equal(isTar, TarShardSource.IsTar(path));
}
