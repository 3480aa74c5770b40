using FeatureOnnx.Pipeline;
using FeatureOnnx.PostProcessing;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>The consume step both extraction paths share: post-processing, rows, errors, commits, counts.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class OutputStageTests
{
    private static InputSelection Selection(params string[] keys) =>
        InputSelection.Select(new InputListing(keys.Select(k => new InputItem(k, "/x/" + k)).ToList(), [new InputProblem("notes.txt", FolderSource.NotAnImage), new InputProblem("gone.jpg", "unreadable")], 1), Shard.All);

    private sealed class Recorder : IProgress<ExtractionProgress>
    {
        public List<ExtractionProgress> Reports { get; } = [];
        public void Report(ExtractionProgress value) => Reports.Add(value);
    }

    [Fact]
    public void Rows_are_pooled_and_normalised_before_they_are_written_and_failures_counted()
    {
        using var tmp = new Fixtures.TempDir();
        var post = new PostProcessOptions { Pooling = PoolingMode.Average, L2 = true };
        var job = OutputStage.Job("m", ["map"], [tmp.Path], Shard.All, 100, InputFile.DefaultMaxFileBytes, post);
        var progress = new Recorder();
        var warnings = new List<string>();
        using (var stage = OutputStage.Open(tmp.Path, job, ["map"], resume: false, Selection("a", "b", "c"), post, progress, warnings))
        {
            Assert.Equal(1, stage.Failed); // gone.jpg; notes.txt is listed but no failure
            // Two rows of [C=2, H=1, W=2]: channel means (2, 4) and (0, -2), then unit length.
            float[] maps = [1, 3, 2, 6, /**/ 0, 0, -1, -3];
            stage.Write(["a", "c"], [new InputProblem("b", "broken")], ["map"], _ => [2, 2, 1, 2], _ => maps);
            Assert.Equal("completed", stage.Finish(stopped: false));
            var result = stage.Summary("completed", "m", "cpu", TimeSpan.FromSeconds(1), TimeSpan.Zero, 0, 0);
            Assert.Equal((5L, 2L, 2L, 0L, 1), (result.Inputs, result.Extracted, result.Failed, result.NotProcessed, result.SkippedNonImageFiles));
            Assert.Equal(new long[] { 2, 2 }, result.Layers["map"]);
            Assert.Equal("avg", result.PostProcess!.Pool);
        }
        var (shape, data) = Fixtures.ReadFloatNpy(tmp.File("map.npy"));
        Assert.Equal(new long[] { 2, 2 }, shape);
        var s = (float)Math.Sqrt(20);
        Assert.Equal([2 / s, 4 / s, 0, -1], data, (x, y) => Math.Abs(x - y) < 1e-6f);
        Assert.Equal("row,path\n0,a\n1,c\n", File.ReadAllText(tmp.File("index.csv")));
        Assert.Equal("path,reason\nnotes.txt,not an image (by its extension)\ngone.jpg,unreadable\nb,broken\n", File.ReadAllText(tmp.File("errors.csv")));
        var last = progress.Reports[^1];
        Assert.Equal((5L, 2L, 5L), (last.Done, last.Failed, last.Total));
        Assert.Empty(warnings);
    }

    [Fact]
    public void A_stopped_run_is_interrupted_and_resumes_with_only_what_is_left()
    {
        using var tmp = new Fixtures.TempDir();
        var post = new PostProcessOptions();
        var job = OutputStage.Job("m", ["pooled"], [tmp.Path], Shard.All, 100, InputFile.DefaultMaxFileBytes, post);
        using (var stage = OutputStage.Open(tmp.Path, job, ["pooled"], resume: true, Selection("a", "b", "c"), post, null, []))
        {
            stage.Write(["a"], [], ["pooled"], _ => [1, 3], _ => [1, 2, 3]);
            Assert.Equal("interrupted", stage.Finish(stopped: true));
        }
        var warnings = new List<string>();
        using (var stage = OutputStage.Open(tmp.Path, job, ["pooled"], resume: true, Selection("a", "b", "c"), post, null, warnings))
        {
            Assert.Equal(["b", "c"], stage.Pending.Items.Select(i => i.Key));
            Assert.Empty(stage.Pending.Problems); // both were committed by the first run
            Assert.Equal(1, stage.Failed);
            stage.Write(["b", "c"], [], ["pooled"], _ => [2, 3], _ => [4, 5, 6, 7, 8, 9]);
            Assert.Equal("completed", stage.Finish(stopped: false));
            var result = stage.Summary("completed", "m", "cpu", TimeSpan.FromSeconds(1), TimeSpan.Zero, 0, 0);
            Assert.True(result.Resumed);
            Assert.Equal((5L, 3L, 1L, 0L), (result.Inputs, result.Extracted, result.Failed, result.NotProcessed));
        }
        Assert.Equal(["resumed after 1 rows and 2 errors committed by the earlier run."], warnings);
        Assert.Equal(Enumerable.Range(1, 9).Select(i => (float)i), Fixtures.ReadFloatNpy(tmp.File("pooled.npy")).Data);
    }

    [Fact]
    public void A_pca_that_does_not_fit_the_output_is_refused_naming_it()
    {
        using var tmp = new Fixtures.TempDir();
        var pca = new PcaModel(new double[3], new double[6], [1, 1], [0.5, 0.5], 0, whiten: false, samplesSeen: 10); // 3 features in, 2 out
        var post = new PostProcessOptions { Pca = pca };
        using var stage = OutputStage.Open(tmp.Path, OutputStage.Job("m", ["pooled"], [tmp.Path], Shard.All, 100, InputFile.DefaultMaxFileBytes, post),
            ["pooled"], false, Selection("a"), post, null, []);
        var e = Assert.Throws<ArgumentException>(() => stage.Write(["a"], [], ["pooled"], _ => [1, 4], _ => new float[4]));
        Assert.Contains("output 'pooled'", e.Message);
    }
}
