using FeatureOnnx.Pipeline;
using FeatureOnnx.Tests.Preprocessing;

namespace FeatureOnnx.Tests.Pipeline;

[Trait("Category", TestCategory.Slow)]
public sealed class ExtractionPipelineTests(ITestOutputHelper output)
{
    private static string[] CsvLines(string path) => File.ReadAllLines(path).Skip(1).ToArray();

    [Fact]
    public async Task Bad_files_go_to_errors_csv_and_good_ones_are_extracted()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        File.Copy(Fixtures.PathOf("photos", "opencv_fruits.jpg"), Path.Combine(input, "good.jpg"));
        File.WriteAllBytes(Path.Combine(input, "truncated.jpg"), File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg"))[..20_000]);
        File.WriteAllBytes(Path.Combine(input, "empty.jpg"), []);
        File.WriteAllText(Path.Combine(input, "text.jpg"), "this is not a JPEG\n");
        File.WriteAllBytes(Path.Combine(input, "bomb.png"), ImageDecoderTests.PngDeclaring(30000, 30000));
        File.WriteAllText(Path.Combine(input, "notes.txt"), "listed as not an image, not a failure");
        var outDir = Path.Combine(tmp.Path, "out");

        var result = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = outDir, BatchSize = 2 });

        Assert.Equal("completed", result.Status);
        // notes.txt is an input listed in errors.csv as not an image, counted apart from the failures.
        Assert.Equal((6L, 1L, 4L, 1L), (result.Inputs, result.Extracted, result.Failed, result.SkippedNonImageFiles));
        Assert.Equal(["0," + Path.Combine(input, "good.jpg")], CsvLines(Path.Combine(outDir, "index.csv")));
        var errors = CsvLines(Path.Combine(outDir, "errors.csv")).ToDictionary(l => Path.GetFileName(l.Split(',')[0]), l => l);
        foreach (var e in errors.Values) output.WriteLine(e);
        Assert.Contains("truncated JPEG", errors["truncated.jpg"]);
        Assert.Contains("empty file", errors["empty.jpg"]);
        Assert.Contains("not a recognised image", errors["text.jpg"]);
        Assert.Contains("megapixels", errors["bomb.png"]);
        Assert.Equal($"{input}/notes.txt,{FeatureOnnx.Sources.FolderSource.NotAnImage}", errors["notes.txt"]);
        var (shape, values) = Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy"));
        Assert.Equal(new long[] { 1, 512 }, shape);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));
        Assert.Contains("\"status\": \"completed\"", File.ReadAllText(Path.Combine(outDir, "run.json")));
    }

    [Fact]
    public async Task Photos_give_finite_distinct_rows_and_flower_variants_are_nearest_neighbours()
    {
        using var tmp = new Fixtures.TempDir();
        var result = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [Fixtures.PathOf("photos")], OutputDirectory = tmp.Path });
        Assert.Equal(33, result.Extracted);
        var (shape, x) = Fixtures.ReadFloatNpy(Path.Combine(tmp.Path, "pooled.npy"));
        Assert.Equal(new long[] { 33, 512 }, shape);
        Assert.All(x, v => Assert.True(float.IsFinite(v)));
        var names = CsvLines(Path.Combine(tmp.Path, "index.csv")).Select(l => Path.GetFileName(l.Split(',', 2)[1])).ToArray();
        int Nearest(int i) => Enumerable.Range(0, 33).Where(j => j != i)
            .MaxBy(j => Fixtures.Cosine(x.AsSpan(i * 512, 512), x.AsSpan(j * 512, 512)));
        for (var i = 0; i < 33; i++)
            for (var j = i + 1; j < 33; j++)
                Assert.False(x.AsSpan(i * 512, 512).SequenceEqual(x.AsSpan(j * 512, 512)), $"rows {i} and {j} are identical");
        // Same photo, different JPEG chroma layouts: each must be the other's nearest neighbour.
        foreach (var (a, b) in new[]
                 {
                     ("libjxl_flower.png.im_q85_420_progr.jpg", "libjxl_flower.png.im_q85_444_1x2.jpg"),
                     ("libjxl_flower_small.q85_420_non_interleaved.jpg", "libjxl_flower_small.q85_444_partially_interleaved.jpg"),
                 })
        {
            var ia = Array.IndexOf(names, a);
            var ib = Array.IndexOf(names, b);
            output.WriteLine($"{a} -> {names[Nearest(ia)]}; {b} -> {names[Nearest(ib)]}");
            Assert.Equal(b, names[Nearest(ia)]);
            Assert.Equal(a, names[Nearest(ib)]);
        }
    }

    [Fact]
    public async Task Refuses_to_overwrite_an_earlier_run_unless_asked()
    {
        using var tmp = new Fixtures.TempDir();
        var options = new ExtractionOptions { Inputs = [Fixtures.PathOf("photos", "opencv_apple.jpg")], OutputDirectory = tmp.Path };
        await new ExtractionPipeline().RunAsync(options);
        var e = await Assert.ThrowsAsync<IOException>(() => new ExtractionPipeline().RunAsync(options));
        Assert.Contains("ExtractionOptions.Overwrite", e.Message);
        var again = await new ExtractionPipeline().RunAsync(options with { Overwrite = true });
        Assert.Equal(1, again.Extracted);
    }

    [Fact]
    public async Task Preprocessed_tensors_in_give_the_same_rows_as_the_images()
    {
        using var tmp = new Fixtures.TempDir();
        var photos = new[] { "opencv_apple.jpg", "skimage_coffee.png", "opencv_home.jpg" }.Select(p => Fixtures.PathOf("photos", p)).ToArray();
        var manifest = new FeatureOnnx.Models.ModelCatalog().Resolve("resnet18");
        var pre = new FeatureOnnx.Preprocessing.ImagePreprocessor(manifest);
        using (var w = new FeatureOnnx.Formats.NpyWriter(tmp.File("x.npy"), [3, 224, 224]))
        {
            foreach (var p in photos)
            {
                var slot = new float[pre.SlotLength];
                pre.Preprocess(File.ReadAllBytes(p), slot);
                w.Append(slot);
            }
            w.Complete();
        }
        var fromImages = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = photos, OutputDirectory = tmp.File("a"), BatchSize = 2 });
        var fromTensors = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [], TensorsIn = tmp.File("x.npy"), OutputDirectory = tmp.File("b"), BatchSize = 2 });
        Assert.Equal(3, fromTensors.Extracted);
        Assert.Equal(Fixtures.ReadFloatNpy(tmp.File("a/pooled.npy")).Data, Fixtures.ReadFloatNpy(tmp.File("b/pooled.npy")).Data);
        Assert.Equal(tmp.File("x.npy") + "#2", CsvLines(tmp.File("b/index.csv"))[2].Split(',', 2)[1]);
    }

    [Fact]
    public async Task No_usable_input_still_writes_empty_arrays_of_the_declared_shape()
    {
        using var tmp = new Fixtures.TempDir();
        File.WriteAllText(tmp.File("a.jpg"), "text");
        var result = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [tmp.File("a.jpg")], OutputDirectory = tmp.File("out") });
        Assert.Equal((0L, 1L), (result.Extracted, result.Failed));
        Assert.Equal(new long[] { 0, 512 }, Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out"), "pooled.npy")).Shape);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelling_leaves_consistent_files_that_resume_completes(bool postProcess)
    {
        using var tmp = new Fixtures.TempDir();
        var options = new ExtractionOptions { Inputs = [Fixtures.PathOf("photos")], OutputDirectory = tmp.File("out"), BatchSize = 4 };
        if (postProcess)
            options = options with
            {
                Layers = ["layer3"],
                PostProcess = new FeatureOnnx.PostProcessing.PostProcessOptions { Pooling = FeatureOnnx.PostProcessing.PoolingMode.Average, L2 = true },
            };
        var file = postProcess ? "layer3.npy" : "pooled.npy";
        using var cts = new CancellationTokenSource();
        var first = await new ExtractionPipeline().RunAsync(options, new Progress(() => cts.Cancel()), cts.Token);
        Assert.Equal("interrupted", first.Status);
        Assert.True(first.NotProcessed > 0);
        var (shape, _) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out"), file));
        Assert.Equal(first.Extracted, shape[0]);
        Assert.Equal(first.Extracted, CsvLines(Path.Combine(tmp.File("out"), "index.csv")).Length);

        var second = await new ExtractionPipeline().RunAsync(options with { Resume = true });
        Assert.Equal(("completed", 33L, true), (second.Status, second.Extracted, second.Resumed));
        var reference = await new ExtractionPipeline().RunAsync(options with { OutputDirectory = tmp.File("ref") });
        Assert.Equal(CsvLines(Path.Combine(tmp.File("ref"), "index.csv")), CsvLines(Path.Combine(tmp.File("out"), "index.csv")));
        var (refShape, refData) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("ref"), file));
        Assert.Equal(new long[] { 33, postProcess ? 256 : 512 }, refShape);
        Assert.Equal(refData, Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out"), file)).Data);
    }

    /// <summary>Runs an action on the first report (synchronously, unlike System.Progress).</summary>
    private sealed class Progress(Action onFirst) : IProgress<ExtractionProgress>
    {
        private int _reports;
        public void Report(ExtractionProgress value)
        {
            if (Interlocked.Increment(ref _reports) == 1) onFirst();
        }
    }
}
