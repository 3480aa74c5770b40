using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

/// <summary><c>featureonnx convert</c>'s library half: the built-in resnet18 written once at fp16 and run like any manifest.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class ConvertedModelTests(ITestOutputHelper output)
{
    private static readonly ModelCatalog Catalog = new();

    [Fact]
    public void Converted_resnet18_gives_the_features_of_fp16_prepared_on_the_fly_with_every_output()
    {
        using var tmp = new Fixtures.TempDir();
        var source = Catalog.Resolve("resnet18");
        var written = ConvertedModel.Write(source, ModelPrecision.Fp16, tmp.File("resnet18_fp16.json"), Catalog);
        Assert.True(File.Exists(written.OnnxPath));
        var converted = ModelManifest.Load(written.ManifestPath);
        Assert.Equal(ModelPrecision.Fp16, converted.Precision);
        Assert.Equal(source.Outputs.Select(o => o.Name), converted.Outputs.Select(o => o.Name));
        Assert.Contains("Float32Island", converted.Provenance!.Notes);

        var photos = Uint8Agreement.Photos().Take(4).ToArray();
        var fromFile = PrecisionAgreement.Features(converted, Catalog, "pooled", new PrepareOptions(), photos);
        var onTheFly = PrecisionAgreement.Features(source, Catalog, "pooled", PrecisionAgreement.Fp16, photos);
        var fp32 = PrecisionAgreement.Features(source, Catalog, "pooled", PrecisionAgreement.Fp32, photos);
        var same = PrecisionAgreement.Compare(onTheFly, fromFile, photos.Length);
        var vsFp32 = PrecisionAgreement.Compare(fp32, fromFile, photos.Length);
        output.WriteLine($"converted file vs on the fly: {same}; vs fp32: {vsFp32}");
        Assert.True(same.MaxRelativeDiff <= 1e-6, $"max relative diff {same.MaxRelativeDiff}");
        Assert.True(vsFp32.MinCosine >= 0.9999 && vsFp32.MinCosine < 1 - 1e-9, $"vs fp32: {vsFp32.MinCosine}");

        var layer1 = PreparedModel.Build(converted, ["layer1"], Catalog);
        Assert.Equal(ModelPrecision.Fp16, layer1.Precision);
        Assert.NotNull(layer1.Conversion); // read from the ONNX file's metadata
    }

    [Fact]
    public void A_converted_model_refuses_another_precision_and_fp32_is_not_a_conversion()
    {
        using var tmp = new Fixtures.TempDir();
        var source = Catalog.Resolve("resnet18");
        var written = ConvertedModel.Write(source, ModelPrecision.Fp16, tmp.File("r18.json"), Catalog);
        var e = Assert.Throws<ArgumentException>(() => PreparedModel.Build(ModelManifest.Load(written.ManifestPath), ["pooled"], Catalog,
            new PrepareOptions { Precision = ModelPrecision.Fp32 }));
        Assert.Contains("stored at precision fp16", e.Message);
        Assert.Contains("r18.json", e.Message);
        Assert.Throws<ArgumentException>(() => ConvertedModel.Write(source, ModelPrecision.Fp32, tmp.File("x.json"), Catalog));
    }
}
