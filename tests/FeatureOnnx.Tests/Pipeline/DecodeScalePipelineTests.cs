using FeatureOnnx.Pipeline;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary><see cref="ExtractionOptions.DecodeScale"/> through the whole run: rows, run.json, resume.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class DecodeScalePipelineTests
{
    // 2268x1512 (auto 1/2, draft 1/4), 2075x2061 (auto 1/4, draft 1/8), 512x480 (never scaled), a PNG.
    private static readonly string[] Files =
    [
        Fixtures.PathOf("photos", "libjxl_flower.png.im_q85_420_progr.jpg"),
        Fixtures.PathOf("decode_scale", "gen_large_420_exif6.jpg"),
        Fixtures.PathOf("photos", "opencv_fruits.jpg"),
        Fixtures.PathOf("photos", "skimage_chelsea.png"),
    ];

    private static float[] Row(string outDir, string file)
    {
        var index = File.ReadAllLines(Path.Combine(outDir, "index.csv")).Skip(1).Select(l => l.Split(',', 2)[1]).ToList();
        var (_, x) = Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy"));
        var i = index.IndexOf(file);
        Assert.True(i >= 0, file);
        return x.AsSpan(i * 512, 512).ToArray();
    }

    [SkippableFact]
    public async Task Auto_and_draft_rows_follow_the_scale_and_run_json_counts_it()
    {
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        using var tmp = new Fixtures.TempDir();
        var exact = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = Files, OutputDirectory = tmp.File("exact"), BatchSize = 2 });
        var auto = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = Files, OutputDirectory = tmp.File("auto"), BatchSize = 2, DecodeScale = DecodeScale.Auto });
        var draft = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = Files, OutputDirectory = tmp.File("draft"), BatchSize = 2, DecodeScale = DecodeScale.Draft });

        Assert.Equal(("exact", 2L), (exact.DecodeScale, exact.ReducibleJpegs));
        Assert.Equal(new Dictionary<string, long> { ["1/1"] = 4 }, exact.DecodedAtScale);
        Assert.Equal(new Dictionary<string, long> { ["1/1"] = 2, ["1/2"] = 1, ["1/4"] = 1 }, auto.DecodedAtScale);
        Assert.Equal(new Dictionary<string, long> { ["1/1"] = 2, ["1/4"] = 1, ["1/8"] = 1 }, draft.DecodedAtScale);
        Assert.False(auto.DecodeScaleAutoAdvised);
        Assert.Equal(0, auto.ReducibleJpegs);

        // run.json carries the same, camelCase.
        var json = RunSummary.Read<ExtractionResult>(Path.Combine(tmp.File("auto"), "run.json"))!;
        Assert.Equal("auto", json.DecodeScale);
        Assert.Equal(auto.DecodedAtScale, json.DecodedAtScale);
        var text = File.ReadAllText(Path.Combine(tmp.File("draft"), "run.json"));
        Assert.Contains("\"decodeScale\": \"draft\"", text, StringComparison.Ordinal);
        Assert.Contains("\"1/8\": 1", text, StringComparison.Ordinal);

        // Unscaled files give the very same rows; scaled ones differ, auto less than draft.
        foreach (var f in Files[2..])
        {
            Assert.Equal(Row(tmp.File("exact"), f), Row(tmp.File("auto"), f));
            Assert.Equal(Row(tmp.File("exact"), f), Row(tmp.File("draft"), f));
        }
        foreach (var f in Files[..2])
        {
            var e = Row(tmp.File("exact"), f);
            var a = Fixtures.Cosine(e, Row(tmp.File("auto"), f));
            var d = Fixtures.Cosine(e, Row(tmp.File("draft"), f));
            Assert.True(a < 1 && a >= 0.998, $"{f}: auto cosine {a}");
            Assert.True(d < a, $"{f}: draft cosine {d} >= auto {a}");
        }
    }

    [SkippableFact]
    public async Task Resume_refuses_a_changed_decode_scale()
    {
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        using var tmp = new Fixtures.TempDir();
        // 33 photos in batches of 2: decoding runs at most a few batches ahead, so cancelling at the first one leaves work.
        var options = new ExtractionOptions { Inputs = [Fixtures.PathOf("photos")], OutputDirectory = tmp.File("out"), BatchSize = 2, DecodeScale = DecodeScale.Auto };
        using var cts = new CancellationTokenSource();
        var first = await new ExtractionPipeline().RunAsync(options, new CancelOnFirst(cts), cts.Token);
        Assert.Equal("interrupted", first.Status);
        var e = await Assert.ThrowsAsync<SettingException>(() => new ExtractionPipeline().RunAsync(options with { Resume = true, DecodeScale = DecodeScale.Exact }));
        Assert.Contains("decodeScale: was 'auto'", e.Message, StringComparison.Ordinal);
        var resumed = await new ExtractionPipeline().RunAsync(options with { Resume = true });
        Assert.Equal(("completed", 33L), (resumed.Status, resumed.Extracted));
    }

    [Theory]
    // scale, reducible JPEGs, extracted, decode busy, inference + write busy, advised
    [InlineData("exact", 84, 84, 142, 22, true)]   // the run: decode-bound, every photo large
    [InlineData("exact", 84, 84, 20, 22, false)]   // inference-bound: scaling would not speed the run up
    [InlineData("exact", 20, 84, 142, 22, false)]  // decode-bound, but fewer than a quarter of the images are large JPEGs
    [InlineData("exact", 21, 84, 142, 22, true)]
    [InlineData("auto", 84, 84, 142, 22, false)]   // already scaled
    [InlineData("exact", 0, 0, 1, 0, false)]
    public void Auto_is_advised_only_when_decode_bound_on_large_JPEGs(string scale, long reducible, long extracted, long decode, long other, bool advised) =>
        Assert.Equal(advised, ExtractionPipeline.AutoDecodeScaleAdvised(DecodeScale.Parse(scale), reducible, extracted, decode, other));

    private sealed class CancelOnFirst(CancellationTokenSource cts) : IProgress<ExtractionProgress>
    {
        public void Report(ExtractionProgress value) => cts.Cancel();
    }
}
