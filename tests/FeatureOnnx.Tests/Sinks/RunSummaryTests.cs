using FeatureOnnx.Pipeline;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Sinks;

[Trait("Category", TestCategory.Fast)]
public sealed class RunSummaryTests
{
    private static readonly MergeResult Merge = new()
    {
        Model = "resnet18",
        Layers = new Dictionary<string, long[]> { ["pooled"] = [2, 512] },
        Extracted = 2,
        Failed = 1,
        Sources = ["a", "b"],
    };

    [Fact]
    public void Writes_camel_case_indented_json_with_a_final_newline()
    {
        using var tmp = new Fixtures.TempDir();
        var path = tmp.File("run.json");
        RunSummary.Write(path, Merge);
        const string expected = """
            {
              "status": "completed",
              "model": "resnet18",
              "layers": {
                "pooled": [
                  2,
                  512
                ]
              },
              "extracted": 2,
              "failed": 1,
              "sources": [
                "a",
                "b"
              ],
              "rowOrder": "by path (ordinal), the order of an unsharded run over one folder"
            }

            """;
        Assert.Equal(expected, File.ReadAllText(path));
        Assert.Equal(["run.json"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Read_gives_back_what_was_written_and_a_rewrite_replaces_the_file()
    {
        using var tmp = new Fixtures.TempDir();
        var path = tmp.File("run.json");
        File.WriteAllText(path, new string('x', 10_000)); // longer than the summary: a rewrite must not leave its tail
        RunSummary.Write(path, Merge);
        var back = RunSummary.Read<MergeResult>(path)!;
        Assert.Equal((Merge.Status, Merge.Model, Merge.Extracted, Merge.Failed, Merge.RowOrder), (back.Status, back.Model, back.Extracted, back.Failed, back.RowOrder));
        Assert.Equal([2L, 512L], back.Layers["pooled"]);
        Assert.Equal(["a", "b"], back.Sources);
        Assert.False(File.Exists(path + ".partial"));
    }

    [Fact]
    public void Null_properties_are_left_out()
    {
        using var tmp = new Fixtures.TempDir();
        var path = tmp.File("run.json");
        RunSummary.Write(path, new ExtractionResult
        {
            Status = "completed",
            Model = "resnet18",
            Provider = "cpu",
            Layers = new Dictionary<string, long[]>(),
            Seconds = new Dictionary<string, double>(),
        });
        var text = File.ReadAllText(path);
        Assert.Contains("\"provider\": \"cpu\"", text);
        Assert.DoesNotContain("\"manifest\"", text);         // Manifest is null
        Assert.DoesNotContain("\"providerFallback\"", text); // ProviderFallback is null
        Assert.DoesNotContain("\"decoders\"", text);         // Decoders is null
    }
}
