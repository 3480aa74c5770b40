using System.Buffers.Binary;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Preprocessing;

/// <summary>
/// TurboJPEG against Pillow: fixtures/jpeg/&lt;name&gt;.rgb.npy is <c>np.asarray(Image.open(f).convert('RGB'))</c> from
/// Debian's Pillow 9.4 on libjpeg62-turbo 2.1.5 (export-scripts/make_jpeg_fixtures.py), against the libturbojpeg.so.0
/// every linux-x64 build carries (src/FeatureOnnx/native/linux-x64): missing there is a failure, not a skip.
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class TurboJpegDecoderTests(ITestOutputHelper output) : IDisposable
{
    private readonly TurboJpegDecoder? _decoder = TurboJpegDecoder.TryCreate();

    private static readonly string[] Names =
    [
        "opencv_baboon",
        "libjxl_flower_small.q85_444_partially_interleaved",
        "libjxl_flower_small.q85_420_non_interleaved",
        "opencv_left01",
        "gen_progressive_420",
        "gen_pair_444",
        "gen_pair_422",
        "gen_pair_420",
        "gen_cmyk",
        "gen_damaged_420",
    ];

    public static TheoryData<string> Jpegs => new(Names);

    public void Dispose() => _decoder?.Dispose();

    private TurboJpegDecoder Decoder()
    {
        if (!TurboJpegDecoder.IsAvailable) output.WriteLine($"unavailable: {TurboJpegDecoder.UnavailableReason}");
        Fixtures.RequireTurboJpeg();
        return _decoder!;
    }

    private static byte[] Jpeg(string name) => File.ReadAllBytes(Fixtures.PathOf("jpeg", name + ".jpg"));

    private static (int MaxDiff, double MeanDiff, long Differing) Compare(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        int max = 0;
        long sum = 0, differing = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var d = Math.Abs(expected[i] - actual[i]);
            if (d == 0) continue;
            differing++;
            sum += d;
            max = Math.Max(max, d);
        }
        return (max, (double)sum / expected.Length, differing);
    }

    [SkippableTheory]
    [MemberData(nameof(Jpegs))]
    public void Decodes_exactly_as_Pillow(string name)
    {
        var decoder = Decoder();
        var jpeg = Jpeg(name);
        var (shape, expected) = Fixtures.ReadUInt8Npy(Fixtures.PathOf("jpeg", name + ".rgb.npy"));

        var image = decoder.Decode(jpeg);

        Assert.Equal([image.Height, image.Width, 3], shape);
        var turbo = Compare(expected, image.Pixels);
        var sharp = Compare(expected, new ImageDecoder(new ImageDecoderOptions { ApplyExifOrientation = false }).Decode(jpeg).Pixels);
        output.WriteLine($"{name} {image.Width}x{image.Height}: TurboJPEG ({TurboJpegDecoder.LibraryName}) max |diff| {turbo.MaxDiff}, mean {turbo.MeanDiff:0.####}, {turbo.Differing} bytes differ; " +
                         $"ImageSharp max |diff| {sharp.MaxDiff}, mean {sharp.MeanDiff:0.####}");
        Assert.Equal(0, turbo.MaxDiff);
    }

    [Fact]
    public void Every_fixture_jpeg_is_compared()
    {
        var files = Directory.EnumerateFiles(Fixtures.PathOf("jpeg"), "*.jpg").Select(f => Path.GetFileNameWithoutExtension(f)).Order();
        Assert.Equal(files, Names.Order());
    }

    [SkippableFact]
    public void Greyscale_comes_out_with_equal_channels()
    {
        var image = Decoder().Decode(Jpeg("opencv_left01"));
        for (var i = 0; i < image.Pixels.Length; i += 3)
            Assert.True(image.Pixels[i] == image.Pixels[i + 1] && image.Pixels[i] == image.Pixels[i + 2], $"pixel {i / 3} is not grey");
    }

    [SkippableFact]
    public void Truncated_jpeg_is_refused()
    {
        var jpeg = Jpeg("opencv_baboon");
        var e = Assert.Throws<ImageDecodeException>(() => Decoder().Decode(jpeg.AsSpan(0, 20_000)));
        Assert.Contains("truncated JPEG", e.Message);
        output.WriteLine(e.Message);
    }

    [SkippableFact]
    public void Other_formats_and_junk_are_refused()
    {
        var decoder = Decoder();
        Assert.Contains("not a JPEG", Assert.Throws<ImageDecodeException>(() => decoder.Decode(File.ReadAllBytes(Fixtures.PathOf("generated", "tiny_99x61.png")))).Message);
        Assert.Contains("not a JPEG", Assert.Throws<ImageDecodeException>(() => decoder.Decode([])).Message);
        byte[] junk = [0xFF, 0xD8, 0xFF, 0xD9];
        output.WriteLine(Assert.Throws<ImageDecodeException>(() => decoder.Decode(junk)).Message);
    }

    [SkippableFact]
    public void Fatal_libjpeg_error_is_reported()
    {
        var jpeg = Jpeg("gen_pair_420");
        var sof = Segments(jpeg).Single(s => s.Marker == 0xC0);
        jpeg[sof.Offset + 4] = 12; // sample precision 12: libjpeg-turbo 2.1 (8-bit build) refuses it, so does Pillow
        var e = Assert.Throws<ImageDecodeException>(() => Decoder().Decode(jpeg));
        output.WriteLine(e.Message);
        Assert.StartsWith("corrupt JPEG:", e.Message);
        Assert.Contains("precision", e.Message);
    }

    [SkippableFact]
    public void Fatal_error_after_a_warning_is_not_mistaken_for_a_warning()
    {
        // tjGetErrorCode says TJERR_WARNING once any warning was emitted, even when a fatal error followed.
        var original = Jpeg("gen_progressive_420");
        var segments = Segments(original);
        var scans = segments.Where(s => s.Marker == 0xDA).ToList();
        Assert.True(scans.Count >= 4);
        // Cut half of the second scan's entropy-coded data (a warning: premature end of data segment) ...
        var second = scans[1];
        var next = segments[segments.IndexOf(second) + 1].Offset; // the next marker segment (DHT or SOS)
        var dataStart = second.Offset + 2 + second.Length;
        var cut = dataStart + (next - dataStart) / 2;
        while (original[cut - 1] == 0xFF) cut++;
        var damaged = original[..cut].Concat(original[next..]).ToArray();
        var decoder = Decoder();
        var warningsOnly = decoder.Decode(damaged);
        Assert.Equal(333 * 250 * 3, warningsOnly.Pixels.Length);

        // ... and make the last scan name a component the frame does not have (fatal, later in the same call).
        var last = Segments(damaged).Last(s => s.Marker == 0xDA);
        damaged[last.Offset + 5] = 9; // first component selector
        var e = Assert.Throws<ImageDecodeException>(() => decoder.Decode(damaged));
        output.WriteLine(e.Message);
        Assert.StartsWith("corrupt JPEG:", e.Message);
        Assert.Contains("after the warning", e.Message);
    }

    [SkippableFact]
    public void Pixel_limit_is_checked_from_the_header()
    {
        var e = Assert.Throws<ImageDecodeException>(() => Decoder().Decode(Jpeg("opencv_baboon"), maxPixels: 100_000));
        Assert.Contains("512x512", e.Message);
        Assert.Contains("megapixels", e.Message);
    }

    [SkippableFact]
    public void One_decoder_serves_parallel_callers()
    {
        var decoder = Decoder();
        var names = Names;
        var inputs = names.Select(Jpeg).ToArray();
        var expected = inputs.Select(j => decoder.Decode(j).Pixels).ToArray();
        Parallel.For(0, names.Length * 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            Assert.Equal(expected[i % names.Length], decoder.Decode(inputs[i % names.Length]).Pixels));
    }

    [SkippableFact]
    public void Disposed_decoder_refuses_work()
    {
        Fixtures.RequireTurboJpeg();
        var decoder = new TurboJpegDecoder();
        decoder.Decode(Jpeg("gen_cmyk"));
        decoder.Dispose();
        decoder.Dispose();
        Assert.Throws<ObjectDisposedException>(() => decoder.Decode(Jpeg("gen_cmyk")));
    }

    [Fact]
    public void Availability_is_reported_without_throwing()
    {
        var available = TurboJpegDecoder.IsAvailable;
        Assert.Equal(available, TurboJpegDecoder.UnavailableReason is null);
        Assert.Equal(available, TurboJpegDecoder.LibraryName is not null);
        using var decoder = TurboJpegDecoder.TryCreate();
        Assert.Equal(available, decoder is not null);
        output.WriteLine(available ? $"loaded {TurboJpegDecoder.LibraryName}" : $"unavailable: {TurboJpegDecoder.UnavailableReason}");
    }

    [SkippableFact]
    public void The_bundled_copy_is_loaded_from_next_to_the_app_whatever_the_system_has()
    {
        Fixtures.RequireTurboJpeg();
        // The build copies src/FeatureOnnx/native/linux-x64/libturbojpeg.so.0 next to every app; it must win over a
        // system copy (a machine with libturbojpeg0 installed) so that every machine decodes with the same 2.1.5.
        var bundled = Path.Combine(AppContext.BaseDirectory, "libturbojpeg.so.0");
        Assert.Equal(bundled, TurboJpegDecoder.LibraryPath);
        Assert.True(TurboJpegDecoder.IsBundled);
        Assert.Equal("2.1.5", TurboJpegDecoder.Version);
        // Debian bookworm libturbojpeg0 1:2.1.5-2 (src/FeatureOnnx/native/linux-x64/README.md).
        Assert.Equal("4292207ec19b9543d29e13a71263ecd6ad89a28f880e5d201c76cfb168e6d056",
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(bundled))));
        Assert.Equal($"libjpeg-turbo 2.1.5 (bundled: {bundled})", TurboJpegDecoder.Description);
        Assert.StartsWith("libjpeg-turbo 2.1.5", new ImageDecoder().Decoders["jpeg"]);
        Assert.Null(new ImageDecoder().JpegFallbackWarning);
        output.WriteLine(TurboJpegDecoder.Description);
    }

    [Fact]
    public void ImageSharp_is_named_with_its_package_version()
    {
        var decoders = new ImageDecoder(new ImageDecoderOptions { PreferTurboJpeg = false }).Decoders;
        Assert.Equal("ImageSharp 2.1.13", decoders["other"]);
        Assert.Equal("ImageSharp 2.1.13", decoders["jpeg"]);
    }

    [Fact]
    public void Pillow_cmyk_conversion_formula()
    {
        // libjpeg bytes as stored in an Adobe CMYK JPEG (inverted): white, black, pure cyan, mid grey with 50% K.
        byte[] stored = [255, 255, 255, 255, 255, 255, 255, 0, 0, 255, 255, 255, 127, 127, 127, 128];
        var rgb = TurboJpegDecoder.PilCmykToRgb(stored, 4);
        // Pillow: Image.frombytes('CMYK', (4, 1), bytes(255 - b for b in stored)).convert('RGB')
        Assert.Equal(new byte[] { 255, 255, 255, 0, 0, 0, 0, 255, 255, 64, 64, 64 }, rgb);
    }

    /// <summary>Marker segments up to and including each SOS: (offset of the 0xFF, marker, length field).</summary>
    private static List<(int Offset, byte Marker, int Length)> Segments(byte[] jpeg)
    {
        var list = new List<(int, byte, int)>();
        var i = 2;
        while (i + 4 <= jpeg.Length)
        {
            if (jpeg[i] != 0xFF) { i++; continue; } // entropy-coded data
            var marker = jpeg[i + 1];
            if (marker is 0x00 or 0xFF or >= 0xD0 and <= 0xD7) { i += marker == 0xFF ? 1 : 2; continue; }
            if (marker == 0xD9) break;
            var length = BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(i + 2));
            list.Add((i, marker, length));
            i += 2 + length;
        }
        return list;
    }
}
