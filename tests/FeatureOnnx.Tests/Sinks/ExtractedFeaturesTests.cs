using FeatureOnnx.Pipeline;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Sinks;

/// <summary>Reading a finished run's output back: rows with their inputs, and refusals that name the folder and the fix.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class ExtractedFeaturesTests
{
    /// <summary>Writes a run as extract does (through <see cref="FeatureOutputFolder"/>): each output gets the rows given, row r of output o holding o's index + r.</summary>
    internal static void WriteRun(string dir, IReadOnlyList<string> keys, IReadOnlyDictionary<string, float[]> outputs, string status = "completed")
    {
        var names = outputs.Keys.ToList();
        using var folder = FeatureOutputFolder.Open(dir, new Dictionary<string, string> { ["test"] = "1" }, names, resume: false);
        foreach (var (name, values) in outputs) folder.Append(name, [values.Length / keys.Count], values);
        folder.Index(keys);
        folder.Commit();
        folder.Close(completed: status == "completed");
        // MergeResult: a run.json type the library serialises (status, model, layers), as merge writes it.
        folder.WriteSummary(new MergeResult { Status = status, Model = "test", Layers = folder.Layers, Sources = [] });
    }

    [Fact]
    public void Reads_the_rows_with_the_input_each_came_from()
    {
        using var tmp = new Fixtures.TempDir();
        WriteRun(tmp.Path, ["a/1.jpg", "b/2.jpg", "b/3.jpg"], new Dictionary<string, float[]> { ["pooled"] = [1, 2, 3, 4, 5, 6] });
        var f = ExtractedFeatures.Load(tmp.Path);
        Assert.Equal("pooled", f.Output);
        Assert.Equal(["a/1.jpg", "b/2.jpg", "b/3.jpg"], f.Keys);
        Assert.Equal([2L], f.RowShape);
        Assert.Equal(3, f.Rows);
        Assert.Equal(2, f.Width);
        Assert.Equal([1f, 2, 3, 4, 5, 6], f.Values);
    }

    [Fact]
    public void A_run_with_several_outputs_must_be_told_which()
    {
        using var tmp = new Fixtures.TempDir();
        WriteRun(tmp.Path, ["x.jpg"], new Dictionary<string, float[]> { ["pooled"] = [1, 2], ["layer3"] = [7, 8, 9] });
        var e = Assert.Throws<ArgumentException>(() => ExtractedFeatures.Load(tmp.Path));
        Assert.Contains("2 outputs", e.Message);
        Assert.Contains("layer3", e.Message);
        Assert.Equal([7f, 8, 9], ExtractedFeatures.Load(tmp.Path, "layer3").Values);
        Assert.Contains("no output 'fc'", Assert.Throws<InvalidDataException>(() => ExtractedFeatures.Load(tmp.Path, "fc")).Message);
    }

    [Fact]
    public void Refuses_a_folder_without_a_run_an_unfinished_run_and_a_damaged_one()
    {
        using var tmp = new Fixtures.TempDir();
        var none = Assert.Throws<FileNotFoundException>(() => ExtractedFeatures.Load(tmp.Path));
        Assert.Contains("is it an extract output folder", none.Message);

        var unfinished = tmp.File("unfinished");
        WriteRun(unfinished, ["x.jpg"], new Dictionary<string, float[]> { ["pooled"] = [1, 2] }, status: "interrupted");
        var e = Assert.Throws<InvalidDataException>(() => ExtractedFeatures.Load(unfinished));
        Assert.Contains("'interrupted'", e.Message);
        Assert.Contains("Resume", e.Message);

        var damaged = tmp.File("damaged");
        WriteRun(damaged, ["x.jpg", "y.jpg"], new Dictionary<string, float[]> { ["pooled"] = [1, 2, 3, 4] });
        File.AppendAllText(Path.Combine(damaged, FeatureOutputFolder.IndexFileName), "2,z.jpg\n");
        Assert.Contains("2 rows against 3", Assert.Throws<InvalidDataException>(() => ExtractedFeatures.Load(damaged)).Message);

        var foreign = Directory.CreateDirectory(tmp.File("foreign")).FullName;
        File.WriteAllText(Path.Combine(foreign, FeatureOutputFolder.SummaryFileName), "{\"status\": \"completed\"}");
        Assert.Contains("no \"layers\"", Assert.Throws<InvalidDataException>(() => ExtractedFeatures.Load(foreign)).Message);
    }
}
