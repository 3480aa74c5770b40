using FeatureOnnx.Tests.Sinks;

namespace FeatureOnnx.Tests.Cli;

/// <summary>
/// <c>featureonnx retrieval</c> on runs written by hand, where precision at 1 and the neighbour overlap can be worked
/// out: labels from folder names or a CSV, rows matched by path between runs, and the --max-drop gate.
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class RetrievalCommandTests
{
    // Six images in three folders; 2-D features at angles (degrees). Nearest other row by angle:
    // cat/1 (0) -> cat/2 (20): hit; cat/2 (20) -> cat/1: hit; dog/1 (90) -> dog/2 (100): hit; dog/2 (100) -> dog/1: hit;
    // owl/1 (185) -> owl/2 (200): hit; owl/2 (200) -> owl/1: hit. Precision at 1 = 1.
    private static readonly string[] Keys = ["in/cat/1.jpg", "in/cat/2.jpg", "in/dog/1.jpg", "in/dog/2.jpg", "in/owl/1.jpg", "in/owl/2.jpg"];

    private static float[] At(params float[] degrees) =>
        degrees.SelectMany(a => new[] { MathF.Cos(a * MathF.PI / 180), MathF.Sin(a * MathF.PI / 180) }).ToArray();

    private static void Write(string dir, float[] values, string[]? keys = null) =>
        ExtractedFeaturesTests.WriteRun(dir, keys ?? Keys, new Dictionary<string, float[]> { ["pooled"] = values });

    [Fact]
    public void Labels_come_from_folder_names()
    {
        using var tmp = new Fixtures.TempDir();
        Write(tmp.Path, At(0, 20, 90, 100, 185, 200));
        var r = CliProcess.Run("retrieval", tmp.Path);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("3 labels (from parent folder names), 6 queries", r.Out);
        Assert.Contains("precision@1 (leave-one-out): 1.0000", r.Out);
    }

    [Fact]
    public void Against_a_reference_matches_rows_by_path_and_gates_the_drop()
    {
        using var tmp = new Fixtures.TempDir();
        var reference = tmp.File("fp32");
        var candidate = tmp.File("int8");
        Write(reference, At(0, 20, 90, 100, 185, 200));
        // The candidate moved cat/2 to 82 degrees (now nearest dog/1 at 90: a miss; dog/1's nearest becomes cat/2, 8
        // degrees away against dog/2's 10: another miss), and lists its rows in another order: precision 4/6 against 6/6.
        var order = new[] { 5, 4, 3, 2, 1, 0 };
        var moved = new float[] { 0, 82, 90, 100, 185, 200 };
        Write(candidate, At(order.Select(i => moved[i]).ToArray()), order.Select(i => Keys[i]).ToArray());

        var r = CliProcess.Run("retrieval", candidate, "--against", reference, "-k", "1");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("6 images in both", r.Out);
        Assert.Contains("precision@1 (leave-one-out): 0.6667 against 1.0000 (-0.3333)", r.Out);
        // Nearest neighbour lists (k = 1) that changed: cat/1 (cat/2 -> cat/2: same), cat/2 (cat/1 -> dog/1), dog/1
        // (dog/2 -> cat/2): 4 of 6 rows keep theirs. cat/2's row cosine is cos 62 degrees = 0.469472.
        Assert.Contains("1 nearest neighbours: mean overlap 0.6667, min 0.00; row cosine min 0.469472, median 1.000000", r.Out);

        var gated = CliProcess.Run("retrieval", candidate, "--against", reference, "--max-drop", "0.3");
        Assert.Equal(4, gated.ExitCode);
        Assert.Contains("precision@1 fell by 0.3333, more than --max-drop 0.3", gated.Err);
        Assert.Equal(0, CliProcess.Run("retrieval", candidate, "--against", reference, "--max-drop", "0.34").ExitCode);
    }

    [Fact]
    public void A_labels_csv_replaces_folder_names_and_must_cover_every_image()
    {
        using var tmp = new Fixtures.TempDir();
        Write(tmp.Path, At(0, 20, 90, 100, 185, 200));
        // Pair the images across folders instead: 0 with 90, 20 with 100, 185 alone with 200 -> only owl's pair hits.
        var labels = tmp.File("labels.csv");
        File.WriteAllText(labels, "path,label\r\nin/cat/1.jpg,p\r\nin/dog/1.jpg,p\r\nin/cat/2.jpg,q\r\n\"in/dog/2.jpg\",q\r\nin/owl/1.jpg,r\r\nin/owl/2.jpg,r");
        var r = CliProcess.Run("retrieval", tmp.Path, "--labels", labels);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("precision@1 (leave-one-out): 0.3333", r.Out);

        File.WriteAllText(labels, "path,label\nin/cat/1.jpg,p\n");
        var missing = CliProcess.Run("retrieval", tmp.Path, "--labels", labels);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no label for 5 of 6 images, e.g. 'in/cat/2.jpg'", missing.Err);
    }

    [Fact]
    public void Says_when_every_image_carries_one_label()
    {
        using var tmp = new Fixtures.TempDir();
        Write(tmp.Path, At(0, 20, 90), ["photos/a.jpg", "photos/b.jpg", "photos/c.jpg"]);
        var r = CliProcess.Run("retrieval", tmp.Path);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("every image is in a folder named 'photos'", r.Err);
    }

    [Fact]
    public void Refuses_what_it_cannot_compare_naming_the_fix()
    {
        using var tmp = new Fixtures.TempDir();
        Write(tmp.File("a"), At(0, 20, 90, 100, 185, 200));
        ExtractedFeaturesTests.WriteRun(tmp.File("b"), Keys, new Dictionary<string, float[]> { ["pooled"] = new float[18] });
        var width = CliProcess.Run("retrieval", tmp.File("a"), "--against", tmp.File("b"));
        Assert.Equal(1, width.ExitCode);
        Assert.Contains("same model and output", width.Err);
        var noRun = CliProcess.Run("retrieval", tmp.File("nothing"));
        Assert.Equal(1, noRun.ExitCode);
        Assert.Contains("is it an extract output folder", noRun.Err);
        var drop = CliProcess.Run("retrieval", tmp.File("a"), "--max-drop", "0.01");
        Assert.Equal(1, drop.ExitCode);
        Assert.Contains("--max-drop needs --against", drop.Err);
    }
}
