using System.Formats.Tar;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Tests.Sources;

public sealed class InputSourceTests
{
    private static readonly string[] Photos = ["opencv_apple.jpg", "skimage_coffee.png", "opencv_home.jpg"];

    private static string MakeTar(string path, bool withUnsafe)
    {
        using var tar = new TarWriter(File.Create(path), TarEntryFormat.Pax);
        foreach (var p in Photos)
            tar.WriteEntry(Fixtures.PathOf("photos", p), "samples/" + p);
        var longName = "samples/" + new string('x', 150) + ".jpg"; // needs a pax path record
        tar.WriteEntry(Fixtures.PathOf("photos", "opencv_apple.jpg"), longName);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "samples/readme.txt") { DataStream = new MemoryStream("text"u8.ToArray()) });
        if (withUnsafe)
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "../evil.jpg") { DataStream = new MemoryStream([1, 2, 3]) });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "/etc/evil.jpg") { DataStream = new MemoryStream([1, 2, 3]) });
        }
        return path;
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Tar_members_are_listed_in_place_and_unsafe_names_are_refused()
    {
        using var tmp = new Fixtures.TempDir();
        var tar = MakeTar(tmp.File("shard-000.tar"), withUnsafe: true);
        var listing = FolderSource.Enumerate([tar]);
        Assert.Equal(4, listing.Items.Count);
        Assert.Equal(tar + "/samples/opencv_apple.jpg", listing.Items[0].Key);
        Assert.Equal(File.ReadAllBytes(Fixtures.PathOf("photos", "skimage_coffee.png")), listing.Items[1].ReadBytes());
        Assert.EndsWith(new string('x', 150) + ".jpg", listing.Items[3].Key);
        Assert.Equal(1, listing.SkippedNonImageFiles);
        Assert.Equal(2, listing.Problems.Count);
        Assert.All(listing.Problems, p => Assert.Contains("unsafe tar member", p.Reason));
        Assert.False(File.Exists(Path.Combine(tmp.Path, "..", "evil.jpg")));
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Truncated_tar_keeps_the_members_before_the_cut()
    {
        using var tmp = new Fixtures.TempDir();
        var tar = MakeTar(tmp.File("full.tar"), withUnsafe: false);
        var bytes = File.ReadAllBytes(tar);
        var cut = tmp.File("cut.tar");
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        var listing = FolderSource.Enumerate([cut]);
        // Where half the bytes ends depends on the photos' sizes: the first member survives, the last cannot.
        Assert.InRange(listing.Items.Count, 1, 3);
        Assert.Contains(listing.Problems, p => p.Reason.Contains("truncated tar"));
    }

    [Trait("Category", TestCategory.Slow)]
    [Fact]
    public async Task Tar_list_and_folder_inputs_give_the_same_features()
    {
        using var tmp = new Fixtures.TempDir();
        var folder = Directory.CreateDirectory(tmp.File("folder")).FullName;
        foreach (var p in Photos) File.Copy(Fixtures.PathOf("photos", p), Path.Combine(folder, p));
        var tar = MakeTar(tmp.File("shard.tar"), withUnsafe: false);
        File.WriteAllLines(tmp.File("list.txt"), ["# one per line, relative to this file", .. Photos.Select(p => "folder/" + p), ""]);

        async Task<(float[] Rows, List<string> Names)> Run(string input, string name)
        {
            var r = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File(name) });
            Assert.Equal(0, r.Failed);
            var names = File.ReadAllLines(Path.Combine(tmp.File(name), "index.csv")).Skip(1).Select(l => Path.GetFileName(l.Split(',', 2)[1])).ToList();
            return (Fixtures.ReadFloatNpy(Path.Combine(tmp.File(name), "pooled.npy")).Data, names);
        }
        var folderRun = await Run(folder, "a");
        var listRun = await Run("@" + tmp.File("list.txt"), "b");
        var tarRun = await Run(tar, "c");
        Assert.Equal(Photos, listRun.Names); // list order is kept
        Assert.Equal(4, tarRun.Names.Count);
        foreach (var p in Photos)
        {
            var reference = folderRun.Rows.AsSpan(folderRun.Names.IndexOf(p) * 512, 512).ToArray();
            Assert.Equal(reference, listRun.Rows.AsSpan(listRun.Names.IndexOf(p) * 512, 512).ToArray());
            Assert.Equal(reference, tarRun.Rows.AsSpan(tarRun.Names.IndexOf(p) * 512, 512).ToArray());
        }
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Missing_paths_duplicates_and_symlink_loops_are_reported()
    {
        using var tmp = new Fixtures.TempDir();
        var dir = Directory.CreateDirectory(tmp.File("d")).FullName;
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), Path.Combine(dir, "a.jpg"));
        Directory.CreateSymbolicLink(Path.Combine(dir, "loop"), dir);
        var listing = FolderSource.Enumerate([dir, Path.Combine(dir, "a.jpg"), tmp.File("nope.jpg")]);
        Assert.Single(listing.Items);
        Assert.Contains(listing.Problems, p => p.Reason.Contains("symlink loop"));
        Assert.Contains(listing.Problems, p => p.Reason.Contains("duplicate input"));
        Assert.Contains(listing.Problems, p => p.Reason.Contains("no such file"));
    }
}
