using FeatureOnnx.Benchmarking;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Benchmarking;

[Trait("Category", TestCategory.Fast)]
public sealed class BenchmarkInputsTests
{
    private static readonly ModelManifest ResNet18 = new ModelCatalog().Resolve("resnet18", []);

    [Fact]
    public void Images_keep_their_crops_and_fill_the_same_floats_as_the_preprocessor()
    {
        var photos = Directory.GetFiles(Fixtures.PathOf("photos"), "*.jpg").Order(StringComparer.Ordinal).Take(2).ToArray();
        var inputs = BenchmarkInputs.FromImages(ResNet18, photos, 3);
        Assert.Equal(2, inputs.Count);
        var pre = new ImagePreprocessor(ResNet18);
        Assert.Equal(pre.CropLength, inputs.CropLength);
        Assert.Equal(pre.SlotLength, inputs.SlotLength);

        var floats = new float[3 * inputs.SlotLength];
        var crops = new byte[3 * inputs.CropLength];
        inputs.Fill(floats, 3);
        inputs.FillCrops(crops, 3);
        for (var i = 0; i < 3; i++)
        {
            var bytes = File.ReadAllBytes(photos[i % 2]);
            var expected = new float[pre.SlotLength];
            pre.Preprocess(bytes, expected);
            Assert.Equal(expected, floats.AsSpan(i * pre.SlotLength, pre.SlotLength).ToArray());
            Assert.Equal(pre.Crop(bytes), crops.AsSpan(i * pre.CropLength, pre.CropLength).ToArray());
        }
    }

    [SkippableFact]
    public void Draft_decode_scale_gives_PILs_draft_crops_and_says_so()
    {
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        var photo = Fixtures.PathOf("photos", "libjxl_flower_cropped.jpg"); // 1040x1040: PIL's draft decodes it at 1/4
        var inputs = BenchmarkInputs.FromImages(ResNet18, [photo], 1, decodeScale: DecodeScale.Draft);
        var crop = new byte[inputs.CropLength];
        inputs.FillCrops(crop, 1);
        var reference = FeatureOnnx.Formats.NpzArchive.Read(Fixtures.PathOf("decode_scale", "references.npz"))["libjxl_flower_cropped.jpg.draft.s4"];
        Assert.Equal(reference.Data, crop);
        Assert.Contains("decoded at scale draft (1 at 1/4)", inputs.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_crops_are_seeded_and_normalised_by_the_tensor_writer()
    {
        var a = BenchmarkInputs.Random(ResNet18, 2, seed: 7);
        var b = BenchmarkInputs.Random(ResNet18, 2, seed: 7);
        var cropsA = new byte[2 * a.CropLength];
        var cropsB = new byte[2 * b.CropLength];
        a.FillCrops(cropsA, 2);
        b.FillCrops(cropsB, 2);
        Assert.Equal(cropsA, cropsB);
        Assert.True(cropsA.Distinct().Count() > 200);

        var floats = new float[2 * a.SlotLength];
        a.Fill(floats, 2);
        var writer = new TensorWriter(ResNet18.Input, ResNet18.Preprocess);
        var expected = new float[a.SlotLength];
        writer.Write(cropsA.AsSpan(a.CropLength, a.CropLength), expected);
        Assert.Equal(expected, floats.AsSpan(a.SlotLength, a.SlotLength).ToArray());
    }
}
