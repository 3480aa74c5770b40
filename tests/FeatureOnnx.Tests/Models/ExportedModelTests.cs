using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Models;

/// <summary>Models exported by export.py: uint8 input against float input, and its fp16 conversion (featureonnx convert) against float32.</summary>
[Trait("Category", TestCategory.Process)]
public sealed class ExportedModelTests(ExportedResNet18 models, ITestOutputHelper output) : IClassFixture<ExportedResNet18>
{
    [SkippableFact]
    public void Uint8_input_gives_the_float_path_features_on_every_photo()
    {
        Skip.If(models.Missing is not null, models.Missing);
        var manifest = ModelManifest.Load(models.Fp32Manifest);
        var photos = Uint8Agreement.Photos();
        var r = Uint8Agreement.Compare(manifest, null, ["pooled", "layer1", "layer4"], photos);
        output.WriteLine($"exported resnet18 (ImageNet mean/std), {r.Rows} photos, pooled + layer1 + layer4: min cosine {r.MinCosine:0.000000000}, " +
                         $"max relative diff {r.MaxRelativeDiff:g3}, bit-identical {r.BitIdentical}");
        Assert.True(r.MinCosine >= 0.9999999, $"cosine {r.MinCosine}");
        Assert.True(r.MaxRelativeDiff <= 1e-6, $"max relative diff {r.MaxRelativeDiff}");
    }

    [SkippableFact]
    public void Manifests_record_the_precision()
    {
        Skip.If(models.Missing is not null, models.Missing);
        Assert.Equal(ModelPrecision.Fp32, ModelManifest.Load(models.Fp32Manifest).Precision);
        Assert.Equal(ModelPrecision.Fp16, ModelManifest.Load(models.Fp16Manifest).Precision);
        Assert.Contains("\"precision\": \"fp16\"", File.ReadAllText(models.Fp16Manifest));
        Assert.Contains("\"precision\": \"fp32\"", File.ReadAllText(models.Fp32Manifest));
    }

    [SkippableFact]
    public void Fp16_conversion_runs_on_the_cpu_close_to_fp32()
    {
        // ONNX Runtime's CPU provider loads the fp16 graph (where it lacks a float16 kernel it inserts Casts and computes
        // in float32), so it is not refused; the differences are float16 weights and float16 rounding between layers.
        Skip.If(models.Missing is not null, models.Missing);
        var fp32 = ModelManifest.Load(models.Fp32Manifest);
        var fp16 = ModelManifest.Load(models.Fp16Manifest);
        var photos = Uint8Agreement.Photos();
        var pre = new ImagePreprocessor(fp32);
        var batch = new float[photos.Length * pre.SlotLength];
        for (var i = 0; i < photos.Length; i++)
            pre.Preprocess(File.ReadAllBytes(photos[i]), batch.AsSpan(i * pre.SlotLength, pre.SlotLength));
        using var s32 = new FeatureSession(PreparedModel.Build(fp32, ["pooled"]));
        using var s16 = new FeatureSession(PreparedModel.Build(fp16, ["pooled"]));
        Assert.Equal(ExecutionProviderKind.Cpu, s16.Provider);
        using var o32 = s32.Run(batch, photos.Length);
        using var o16 = s16.RunBound(System.Runtime.InteropServices.MemoryMarshal.AsBytes(batch.AsSpan()), photos.Length);
        var e = o32.Values("pooled");
        var a = o16.Values("pooled");
        var row = e.Length / photos.Length;
        double minCos = 1, maxDiff = 0, maxValue = 0;
        for (var r = 0; r < photos.Length; r++)
            minCos = Math.Min(minCos, Fixtures.Cosine(a.Slice(r * row, row), e.Slice(r * row, row)));
        for (var i = 0; i < e.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - e[i]));
            maxValue = Math.Max(maxValue, Math.Abs(e[i]));
        }
        output.WriteLine($"fp16 vs fp32 export on the CPU, {photos.Length} photos, pooled: min cosine {minCos:0.0000000}, max |diff| {maxDiff:g3} = {maxDiff / maxValue:g3} of the largest value");
        // An fp16 export rounds weights and activations to 11 significant bits in every layer: agreement to 1e-2 of the largest value, not float32's.
        Assert.True(minCos >= 0.9999, $"cosine {minCos}");
        Assert.True(maxDiff <= 1e-2 * maxValue, $"max |diff| {maxDiff} of {maxValue}");
    }
}
