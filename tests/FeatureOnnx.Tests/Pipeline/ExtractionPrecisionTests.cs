using System.Text.Json;
using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary><c>extract --precision fp16</c>: features close to fp32, and run.json says what precision ran and by which rules.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class ExtractionPrecisionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Fp16_run_records_its_precision_and_rules_in_run_json()
    {
        using var tmp = new Fixtures.TempDir();
        var photos = new[] { "opencv_baboon.jpg", "skimage_chelsea.png", "opencv_fruits.jpg" }.Select(p => Fixtures.PathOf("photos", p)).ToList();
        var cache = new ConversionCache(tmp.File("cache"));
        var fp16 = await new ExtractionPipeline().RunAsync(new ExtractionOptions
        {
            Inputs = photos, OutputDirectory = tmp.File("fp16"), BatchSize = 2, Precision = ModelPrecision.Fp16, ConversionCache = cache,
        });
        var fp32 = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = photos, OutputDirectory = tmp.File("fp32"), BatchSize = 2 });
        Assert.Equal("fp16", fp16.Precision);
        Assert.Equal("fp32", fp32.Precision);
        Assert.Null(fp32.PrecisionConversion);
        Assert.StartsWith(tmp.File("cache"), fp16.ConvertedModel);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.File("fp16"), "run.json")));
        Assert.Equal("fp16", json.RootElement.GetProperty("precision").GetString());
        var rules = json.RootElement.GetProperty("precisionConversion").GetProperty("rules").EnumerateArray().ToList();
        Assert.Contains(rules, r => r.GetProperty("kind").GetString() == "float32Island" && r.GetProperty("ops")[0].GetString() == "AveragePool x1");
        Assert.Contains(rules, r => r.GetProperty("kind").GetString() == "float16Compute");

        var (shape, a) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("fp16"), "pooled.npy"));
        var (_, b) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("fp32"), "pooled.npy"));
        Assert.Equal(new long[] { 3, 512 }, shape);
        for (var r = 0; r < 3; r++)
        {
            var cos = Fixtures.Cosine(a.AsSpan(r * 512, 512), b.AsSpan(r * 512, 512));
            output.WriteLine($"row {r}: fp16 vs fp32 cosine {cos:0.0000000}");
            Assert.True(cos >= 0.9999 && cos < 1 - 1e-9, $"row {r}: cosine {cos}");
        }
    }

    [Fact]
    public async Task An_int8_run_resumes_only_with_the_calibration_it_started_with()
    {
        using var tmp = new Fixtures.TempDir();
        var cache = new ConversionCache(tmp.File("cache"));
        string[] calibrateA = [Fixtures.PathOf("photos", "opencv_baboon.jpg"), Fixtures.PathOf("photos", "opencv_fruits.jpg")];
        string[] calibrateB = [Fixtures.PathOf("photos", "opencv_baboon.jpg"), Fixtures.PathOf("photos", "skimage_chelsea.png")];
        var options = new ExtractionOptions
        {
            Inputs = [Fixtures.PathOf("photos")], OutputDirectory = tmp.File("out"), BatchSize = 2, Precision = ModelPrecision.Int8,
            CalibrationInputs = calibrateA, Calibration = new CalibrationOptions { Count = 2 }, ConversionCache = cache,
        };
        using var cts = new CancellationTokenSource();
        var first = await new ExtractionPipeline().RunAsync(options, new CancelAtFirstProgress(cts), cts.Token);
        Assert.Equal("interrupted", first.Status);

        // Rows quantised with other activation ranges would be mixed into the same file: refused, naming the key.
        var e = await Assert.ThrowsAsync<SettingException>(() => new ExtractionPipeline().RunAsync(options with { Resume = true, CalibrationInputs = calibrateB }));
        Assert.Contains("calibration: was 'percentile:99.99|2|", e.Message, StringComparison.Ordinal);
        var resumed = await new ExtractionPipeline().RunAsync(options with { Resume = true });
        Assert.Equal("completed", resumed.Status);
    }

    [Fact]
    public async Task An_int8_run_says_in_run_json_which_activation_kernels_ran()
    {
        // An EfficientNet-like block (SiLU and a squeeze-excitation gate) as a bare ONNX file, int8, on the CPU.
        using var tmp = new Fixtures.TempDir();
        var model = tmp.File("mbconv.onnx");
        File.WriteAllBytes(model, FeatureOnnx.Tests.Runtime.Int8Kernels.ActivationFusionTests.Block("N", 3, 224).ToBytes());
        var options = new ExtractionOptions
        {
            Inputs = [Fixtures.PathOf("photos", "opencv_baboon.jpg"), Fixtures.PathOf("photos", "opencv_fruits.jpg")], OutputDirectory = tmp.File("ours"),
            Model = model, BatchSize = 2, Precision = ModelPrecision.Int8, CalibrationInputs = [Fixtures.PathOf("photos", "skimage_chelsea.png")],
            ConversionCache = new ConversionCache(tmp.File("cache")), Session = new FeatureOnnx.Runtime.SessionSettings { OptimizedModelCache = tmp.File("ort") },
        };
        var ours = await new ExtractionPipeline().RunAsync(options);
        var theirs = await new ExtractionPipeline().RunAsync(options with
        {
            OutputDirectory = tmp.File("theirs"), Session = options.Session with { Int8ActivationKernels = false },
        });
        string? Recorded(string dir)
        {
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run.json")));
            return json.RootElement.TryGetProperty("int8Kernels", out var k) ? k.GetString() : null;
        }
        output.WriteLine($"ours: {Recorded(tmp.File("ours"))}");
        Assert.Null(theirs.Int8Kernels);
        Assert.Null(Recorded(tmp.File("theirs")));
        if (!FeatureOnnx.Runtime.Int8Kernels.QuantizedActivations.IsAccelerated)
        {
            Assert.Null(ours.Int8Kernels);
            return;
        }
        Assert.StartsWith("uint8 SiLU x2, squeeze-excitation gates x1 on FeatureOnnx's kernels (", Recorded(tmp.File("ours")));
        Assert.Equal(ours.Int8Kernels, Recorded(tmp.File("ours")));
        var (_, a) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("ours"), "y.npy"));
        var (_, b) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("theirs"), "y.npy"));
        for (var r = 0; r < 2; r++) Assert.True(Fixtures.Cosine(a.AsSpan(r * 3, 3), b.AsSpan(r * 3, 3)) > 0.99, $"row {r}");
    }

    private sealed class CancelAtFirstProgress(CancellationTokenSource cts) : IProgress<ExtractionProgress>
    {
        public void Report(ExtractionProgress value) => cts.Cancel();
    }
}
