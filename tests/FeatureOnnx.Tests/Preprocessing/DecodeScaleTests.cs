using FeatureOnnx.Formats;
using System.Text.Json;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Preprocessing;

/// <summary>
/// Scaled JPEG decodes against Pillow 9.4: crops with <see cref="DecodeScale.Draft"/> equal PIL's crops after
/// <c>Image.draft('RGB', (256, 256))</c>, and crops with <see cref="DecodeScale.Auto"/> equal PIL's crops decoded at the
/// same libjpeg scale and resized with the full image's geometry (<c>Image.resize(size, box=...)</c>; references by
/// export-scripts/make_decode_scale_fixtures.py, fixtures/decode_scale/).
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class DecodeScaleTests(ITestOutputHelper output)
{
    private static readonly Lazy<Dictionary<string, NpyArray>> References =
        new(() => NpzArchive.Read(Fixtures.PathOf("decode_scale", "references.npz")));

    public static IEnumerable<object[]> Entries()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.PathOf("decode_scale", "manifest.json")));
        foreach (var e in doc.RootElement.GetProperty("entries").EnumerateArray())
        {
            var size = e.GetProperty("size");
            yield return [e.GetProperty("file").GetString()!, size[0].GetInt32(), size[1].GetInt32(),
                          e.GetProperty("draft_scale").GetInt32(), e.GetProperty("draft_reference").GetString() ?? "",
                          e.GetProperty("auto_scale").GetInt32(), e.GetProperty("auto_reference").GetString() ?? ""];
        }
    }

    private static ImagePreprocessor Preprocessor(DecodeScale scale) =>
        new(Fixtures.PreprocessOnly(PreprocessSpec.TorchvisionImageNet), decodeScale: scale);

    /// <summary>A reference crop: a key of references.npz, or reference/FILE.npy (the exact crop).</summary>
    private static byte[] Reference(string key)
    {
        if (key.StartsWith("reference/", StringComparison.Ordinal)) return Fixtures.ReadUInt8Npy(Fixtures.PathOf(key.Split('/'))).Data;
        var array = References.Value[key];
        Assert.Equal(new long[] { 224, 224, 3 }, array.Shape);
        return array.Data;
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void Scale_choice_is_Pillows(string file, int width, int height, int draftScale, string draftReference, int autoScale, string autoReference)
    {
        _ = (file, draftReference, autoReference);
        // draft_scale is what Pillow's JpegImageFile.draft chose (its decoderconfig), not a re-implementation.
        Assert.Equal(draftScale, DecodeScale.Draft.DenominatorFor(width, height, 256));
        Assert.Equal(autoScale, DecodeScale.Auto.DenominatorFor(width, height, 256));
        Assert.Equal(1, DecodeScale.Exact.DenominatorFor(width, height, 256));
    }

    [SkippableTheory]
    [MemberData(nameof(Entries))]
    public void Draft_crop_is_PILs_draft_crop(string file, int width, int height, int draftScale, string draftReference, int autoScale, string autoReference)
    {
        _ = (width, height, autoScale, autoReference);
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        Skip.If(draftReference.Length == 0, "no PIL reference at scale 1 for this file");
        var pre = Preprocessor(DecodeScale.Draft);
        var actual = pre.Crop(File.ReadAllBytes(Fixtures.PathOf(file.Split('/'))));
        var (mean, max) = Fixtures.AbsDiff(actual, Reference(draftReference));
        output.WriteLine($"{file}: draft 1/{draftScale}: mean |diff| {mean:0.0000}, max {max}");
        Assert.Equal(0, max);
        Assert.Equal(new Dictionary<string, long> { [$"1/{draftScale}"] = 1 }, pre.DecodeScaleCounts.Snapshot());
    }

    [SkippableTheory]
    [MemberData(nameof(Entries))]
    public void Auto_crop_is_PILs_crop_at_the_same_scale_with_full_size_geometry(string file, int width, int height, int draftScale, string draftReference, int autoScale, string autoReference)
    {
        _ = (width, height, draftScale, draftReference);
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        Skip.If(autoReference.Length == 0, "no PIL reference at scale 1 for this file");
        var pre = Preprocessor(DecodeScale.Auto);
        var actual = pre.Crop(File.ReadAllBytes(Fixtures.PathOf(file.Split('/'))));
        var (mean, max) = Fixtures.AbsDiff(actual, Reference(autoReference));
        output.WriteLine($"{file}: auto 1/{autoScale}: mean |diff| {mean:0.0000}, max {max}");
        Assert.Equal(0, max);
    }

    [SkippableFact]
    public void Exact_run_counts_the_JPEGs_auto_would_reduce()
    {
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        var pre = Preprocessor(DecodeScale.Exact);
        // 2268x1512 (auto: 1/2), 512x512 (auto: 1/1), a PNG (never scaled).
        foreach (var f in new[] { "libjxl_flower.png.im_q85_420_progr.jpg", "opencv_baboon.jpg", "skimage_chelsea.png" })
            pre.Crop(File.ReadAllBytes(Fixtures.PathOf("photos", f)));
        Assert.Equal(new Dictionary<string, long> { ["1/1"] = 3 }, pre.DecodeScaleCounts.Snapshot());
        Assert.Equal(1, pre.DecodeScaleCounts.ReducibleByAuto);
    }

    [SkippableFact]
    public void Non_JPEG_and_small_JPEG_decode_at_full_size_under_draft()
    {
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        var pre = Preprocessor(DecodeScale.Draft);
        // skimage_astronaut.png is 512x512 (draft would pick 1/2 for a JPEG); fruits.jpg 512x480 (480 // 256 = 1).
        var png = pre.Crop(File.ReadAllBytes(Fixtures.PathOf("photos", "skimage_astronaut.png")));
        var jpg = pre.Crop(File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_fruits.jpg")));
        Assert.Equal(Fixtures.ReadUInt8Npy(Fixtures.PathOf("reference", "skimage_astronaut.png.npy")).Data, png);
        Assert.Equal(Fixtures.ReadUInt8Npy(Fixtures.PathOf("reference", "opencv_fruits.jpg.npy")).Data, jpg);
        Assert.Equal(new Dictionary<string, long> { ["1/1"] = 2 }, pre.DecodeScaleCounts.Snapshot());
    }

    [SkippableFact]
    public void Scaled_decode_has_ceil_size_and_the_pixel_limit_stays_on_the_full_size()
    {
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        var jpeg = File.ReadAllBytes(Fixtures.PathOf("decode_scale", "gen_large_420_exif6.jpg")); // 2075x2061 stored
        using var tj = new TurboJpegDecoder();
        var eighth = tj.Decode(jpeg, long.MaxValue, 8);
        Assert.Equal((260, 258), (eighth.Width, eighth.Height)); // ceil(2075 / 8), ceil(2061 / 8)
        // A limit the 1/8 image (67 k pixels) is far under but the file (4.3 M) is over: refused from its header.
        var e = Assert.Throws<ImageDecodeException>(() => tj.Decode(jpeg, 1_000_000, 8));
        Assert.Contains("2075x2061", e.Message, StringComparison.Ordinal);
        var decoder = new ImageDecoder(new ImageDecoderOptions { MaxPixels = 1_000_000 });
        Assert.Throws<ImageDecodeException>(() => decoder.Decode(jpeg, DecodeScale.Draft, 256));
        Assert.Throws<ArgumentOutOfRangeException>(() => tj.Decode(jpeg, long.MaxValue, 3));
        // EXIF 6 applied after scaling: the upright image is 258 wide.
        var upright = new ImageDecoder().Decode(jpeg, DecodeScale.Draft, 256);
        Assert.Equal((258, 260, 8, 4), (upright.Image.Width, upright.Image.Height, upright.ScaleDenominator, upright.AutoDenominator));
    }

    [SkippableTheory]
    [InlineData("gen_damaged_420.jpg", 2)]      // a corrupt entropy segment: libjpeg warns, Pillow keeps its pixels
    [InlineData("gen_progressive_420.jpg", 4)]
    public void Whole_scaled_decode_is_PILs_draft_decode(string file, int scale)
    {
        Skip.If(!TurboJpegDecoder.IsAvailable, $"scaled decodes need libturbojpeg.so.0 ({TurboJpegDecoder.UnavailableReason})");
        var expected = References.Value[$"{file}.decoded.s{scale}"];
        using var tj = new TurboJpegDecoder();
        var image = tj.Decode(File.ReadAllBytes(Fixtures.PathOf("jpeg", file)), long.MaxValue, scale);
        Assert.Equal(new long[] { image.Height, image.Width, 3 }, expected.Shape);
        Assert.Equal(expected.Data, image.Pixels);
    }

    [Theory]
    [InlineData("exact", "exact")]
    [InlineData("draft", "draft")]
    [InlineData("auto", "auto")]
    [InlineData("AUTO:2", "auto")]
    [InlineData("auto:3", "auto:3")]
    [InlineData("auto:1.5", "auto:1.5")]
    public void Parse_reads_the_documented_forms(string text, string canonical)
    {
        var scale = DecodeScale.Parse(text);
        Assert.Equal(canonical, scale.ToString());
        Assert.Equal(scale, DecodeScale.Parse(scale.ToString()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("full")]
    [InlineData("auto:0.5")]
    [InlineData("auto:x")]
    [InlineData("auto:NaN")]
    [InlineData("draft:2")]
    public void Parse_refuses_anything_else_naming_the_forms(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => DecodeScale.Parse(text));
        Assert.Contains("exact, draft, auto or auto:F", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    // Hand-computed. Draft (Pillow): s = largest of 8, 4, 2 with min(W // 256, H // 256) >= s.
    [InlineData("draft", 4000, 3000, 8)]   // 3000 // 256 = 11
    [InlineData("draft", 2047, 4000, 4)]   // 2047 // 256 = 7
    [InlineData("draft", 511, 511, 1)]
    [InlineData("draft", 512, 9000, 2)]
    // Auto, F = 2: s = largest with ceil(min / s) >= 512.
    [InlineData("auto", 4000, 3000, 4)]    // 750 >= 512; 1/8: 375
    [InlineData("auto", 4096, 4096, 8)]    // 512
    [InlineData("auto", 4095, 4095, 8)]    // ceil(4095 / 8) = 512: the decoded shorter side is what counts
    [InlineData("auto", 4088, 4088, 4)]    // 4088 / 8 = 511
    [InlineData("auto", 1023, 5000, 2)]    // ceil(1023 / 2) = 512
    [InlineData("auto", 1022, 5000, 1)]    // 511
    [InlineData("auto:3", 4000, 3000, 2)]  // 768 needed: 1/4 gives 750, 1/2 1500
    [InlineData("auto:1", 4000, 3000, 8)]  // 375 >= 256
    public void DenominatorFor_hand_computed(string scale, int width, int height, int expected)
    {
        var got = DecodeScale.Parse(scale).DenominatorFor(width, height, 256);
        Assert.Equal(expected, got);
        Assert.Equal(got, DecodeScale.Parse(scale).DenominatorFor(height, width, 256)); // orientation does not matter
        Assert.Equal(1, DecodeScale.Parse(scale).DenominatorFor(width, height, 0));     // no resize: full size
    }
}
