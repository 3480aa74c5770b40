using FeatureOnnx.Formats;
using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;
using FeatureOnnx.Cli;
using FeatureOnnx.PostProcessing;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Cli;

/// <summary>What extract prints and refuses: the failure summary, no input, a foreign output folder, --resume on a completed run, run.json's post-processing.</summary>
[Trait("Category", TestCategory.Process)]
public sealed class ExtractCommandTests
{
    private static int RunInProcess(params string[] args) =>
        CommandSet.InvokeAsync(args, new InvocationConfiguration { Output = TextWriter.Null, Error = TextWriter.Null }).GetAwaiter().GetResult();

    /// <summary>One good photo, two truncated JPEGs, an empty file and a text file named .png.</summary>
    private static string BadFolder(Fixtures.TempDir tmp)
    {
        var input = Directory.CreateDirectory(tmp.File("in")).FullName;
        File.Copy(Fixtures.PathOf("photos", "skimage_coffee.png"), Path.Combine(input, "good.png"));
        var jpeg = File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg"));
        File.WriteAllBytes(Path.Combine(input, "t1.jpg"), jpeg[..20_000]);
        File.WriteAllBytes(Path.Combine(input, "t2.jpg"), jpeg[..30_000]);
        File.WriteAllBytes(Path.Combine(input, "empty.jpg"), []);
        File.WriteAllText(Path.Combine(input, "text.png"), "not an image");
        return input;
    }

    [Fact]
    public void Failures_are_counted_per_reason_and_resume_on_the_completed_run_prints_one_line()
    {
        using var tmp = new Fixtures.TempDir();
        var input = BadFolder(tmp);
        var missing = tmp.File("missing.jpg");
        var output = tmp.File("out");
        var errorsCsv = Path.Combine(output, "errors.csv");
        string[] args = ["extract", input, missing, "-o", output, "-q"];

        var run = CliProcess.Run(args);
        Assert.Equal(3, run.ExitCode);
        var lines = run.Out.Split('\n');
        var at = Array.IndexOf(lines, $"5 inputs failed (each one with its full reason in {errorsCsv}):");
        Assert.True(at > 0, run.Out);
        Assert.Equal(
        [
            $"  2 truncated JPEG: {input}/t1.jpg, {input}/t2.jpg",
            $"  1 empty file: {input}/empty.jpg",
            $"  1 no such file or folder: {missing}",
            $"  1 not a recognised image: {input}/text.png",
        ], lines[(at + 1)..(at + 5)]);

        var resumed = CliProcess.Run([.. args, "--resume"]);
        Assert.Equal(3, resumed.ExitCode);
        Assert.Equal($"already complete: 1 rows in {output}, 5 input(s) failed (see {errorsCsv})\n", resumed.Out);
        Assert.Equal("", resumed.Err);
    }

    [Fact]
    public void No_input_found_is_exit_1_with_a_message()
    {
        using var tmp = new Fixtures.TempDir();
        var missing = CliProcess.Run("extract", tmp.File("photoz"), tmp.File("b.jpg"), "-o", tmp.File("out1"), "-q");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith($"error: no input found: {tmp.File("photoz")}, {tmp.File("b.jpg")} do not exist", missing.Err);
        Assert.False(Directory.Exists(tmp.File("out1")));

        var empty = Directory.CreateDirectory(tmp.File("empty")).FullName;
        File.WriteAllText(Path.Combine(empty, "notes.txt"), "not an image extension");
        var none = CliProcess.Run("extract", empty, "-o", tmp.File("out2"), "-q");
        Assert.Equal(1, none.ExitCode);
        Assert.Equal($"error: no image found in {empty} (1 file(s) without an image extension skipped).\n", none.Err);
        Assert.Equal("", none.Out);
        Assert.False(Directory.Exists(tmp.File("out2"))); // refused before the output folder is made: rerunning needs no --overwrite
        Assert.Equal(1, RunInProcess("extract", empty, "-o", tmp.File("out3"), "-q", "--shard", "0/2"));

        // One image and two shards: the shard that gets none of it is not a mistake.
        var one = Directory.CreateDirectory(tmp.File("one")).FullName;
        File.Copy(Fixtures.PathOf("photos", "skimage_coffee.png"), Path.Combine(one, "a.png"));
        Assert.Equal(0, RunInProcess("extract", one, "-o", tmp.File("s0"), "-q", "--shard", "0/2"));
        Assert.Equal(0, RunInProcess("extract", one, "-o", tmp.File("s1"), "-q", "--shard", "1/2"));
        Assert.Equal(3, File.ReadAllLines(tmp.File("s0/index.csv")).Length + File.ReadAllLines(tmp.File("s1/index.csv")).Length);
    }

    [Fact]
    public void A_non_empty_folder_holding_no_run_is_refused_unless_overwrite()
    {
        using var tmp = new Fixtures.TempDir();
        var photo = Fixtures.PathOf("photos", "skimage_coffee.png");
        var mine = Directory.CreateDirectory(tmp.File("mine")).FullName;
        File.WriteAllText(Path.Combine(mine, "index.csv"), "my own index\n");
        var refused = CliProcess.Run("extract", photo, "-o", mine, "-q");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith($"error: {mine} is not empty (index.csv) and holds no earlier run (no run.json)", refused.Err);
        Assert.EndsWith("Choose a new or empty folder. Or pass --overwrite to write into it anyway.\n", refused.Err);
        Assert.Equal(["index.csv"], Directory.GetFileSystemEntries(mine).Select(Path.GetFileName));
        Assert.Equal("my own index\n", File.ReadAllText(Path.Combine(mine, "index.csv")));

        Assert.Equal(0, RunInProcess("extract", photo, "-o", mine, "-q", "--overwrite"));
        Assert.Equal(["0," + photo], File.ReadAllLines(Path.Combine(mine, "index.csv")).Skip(1));
        // An empty folder, and a folder holding a run (with --overwrite), are fine.
        Assert.Equal(0, RunInProcess("extract", photo, "-o", Directory.CreateDirectory(tmp.File("empty")).FullName, "-q"));
        Assert.Equal(0, RunInProcess("extract", photo, "-o", mine, "-q", "--overwrite"));
    }

    [Fact]
    public void Run_json_records_pool_pca_with_its_sha256_and_l2()
    {
        using var tmp = new Fixtures.TempDir();
        // A 512 -> 3 PCA: the first three coordinates, centred on 0.1.
        var components = new double[3 * 512];
        for (var c = 0; c < 3; c++) components[c * 512 + c] = 1;
        var pcaPath = tmp.File("pca.npz");
        new PcaModel(Enumerable.Repeat(0.1, 512).ToArray(), components, [3, 2, 1], [0.3, 0.2, 0.1], 0, whiten: false, samplesSeen: 10).Save(pcaPath);
        var output = tmp.File("out");
        Assert.Equal(0, RunInProcess("extract", Fixtures.PathOf("photos", "skimage_coffee.png"), "-o", output, "--layers", "layer4", "--pool", "avg", "--pca", pcaPath, "--l2", "-q"));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "run.json")));
        var post = json.RootElement.GetProperty("postProcess");
        Assert.Equal("avg", post.GetProperty("pool").GetString());
        Assert.True(post.GetProperty("l2").GetBoolean());
        var pca = post.GetProperty("pca");
        Assert.Equal(pcaPath, pca.GetProperty("path").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(pcaPath))), pca.GetProperty("sha256").GetString());
        Assert.Equal((512, 3, false), (pca.GetProperty("dimension").GetInt32(), pca.GetProperty("components").GetInt32(), pca.GetProperty("whiten").GetBoolean()));
        using var reader = NpyReader.Open(Path.Combine(output, "layer4.npy"));
        Assert.Equal([3L], reader.RowShape);

        // Without post-processing run.json says so too.
        Assert.Equal(0, RunInProcess("extract", Fixtures.PathOf("photos", "skimage_coffee.png"), "-o", tmp.File("plain"), "-q"));
        using var plain = JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.File("plain"), "run.json")));
        Assert.Equal("{\"pool\":\"none\",\"l2\":false}", plain.RootElement.GetProperty("postProcess").GetRawText().Replace(" ", "").Replace("\n", ""));
    }

    [Fact]
    public void A_list_file_names_paths_relative_to_its_own_folder()
    {
        using var tmp = new Fixtures.TempDir();
        var lists = Directory.CreateDirectory(tmp.File("lists")).FullName;
        File.Copy(Fixtures.PathOf("photos", "skimage_coffee.png"), Path.Combine(lists, "a.png"));
        File.Copy(Fixtures.PathOf("photos", "skimage_chelsea.png"), Path.Combine(lists, "b.png"));
        File.WriteAllText(Path.Combine(lists, "inputs.txt"), "a.png\n# a comment\nb.png\n");
        Assert.Equal(0, RunInProcess("extract", "@" + Path.Combine(lists, "inputs.txt"), "-o", tmp.File("out"), "-q"));
        Assert.Equal(3, File.ReadAllLines(tmp.File("out/index.csv")).Length);
    }
}
