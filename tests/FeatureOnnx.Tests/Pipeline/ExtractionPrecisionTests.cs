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
}
