using System.Buffers.Binary;
using System.Text;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Preprocessing;

/// <summary>Malformed inputs must be refused with a reason, never crash or yield a half-black image.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class ImageDecoderTests
{
    private readonly ImageDecoder _decoder = new();

    private static string ReasonFor(ImageDecoder decoder, byte[] data) =>
        Assert.Throws<ImageDecodeException>(() => decoder.Decode(data)).Message;

    [Fact]
    public void Empty_file_is_refused() => Assert.Contains("empty", ReasonFor(_decoder, []));

    [Fact]
    public void Text_is_not_an_image() =>
        Assert.Contains("not a recognised image", ReasonFor(_decoder, Encoding.UTF8.GetBytes("hello, I am a text file named photo.jpg\n")));

    [Fact]
    public void Truncated_jpeg_is_refused()
    {
        var jpeg = File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg"));
        Assert.Contains("truncated JPEG", ReasonFor(_decoder, jpeg[..20_000]));
    }

    [Fact]
    public void Truncated_png_is_refused()
    {
        var png = File.ReadAllBytes(Fixtures.PathOf("photos", "skimage_camera.png"));
        Assert.Contains("truncated PNG", ReasonFor(_decoder, png[..30_000]));
    }

    [Fact]
    public void Complete_files_pass_the_structure_check()
    {
        foreach (var file in Directory.EnumerateFiles(Fixtures.PathOf("photos")).Where(f => !f.EndsWith(".md")))
        {
            var image = _decoder.Decode(File.ReadAllBytes(file));
            Assert.True(image.Width > 0 && image.Pixels.Length == image.Width * image.Height * 3, file);
        }
    }

    [Fact]
    public void Pixel_bomb_is_refused_from_its_header()
    {
        var reason = ReasonFor(_decoder, PngDeclaring(30000, 30000));
        Assert.Contains("30000x30000", reason);
        Assert.Contains("900 megapixels", reason);
        Assert.Contains("raise ImageDecoderOptions.MaxPixels", reason);
    }

    [Fact]
    public void Pixel_limit_is_configurable()
    {
        var small = new ImageDecoder(new ImageDecoderOptions { MaxPixels = 1000 });
        var png = File.ReadAllBytes(Fixtures.PathOf("photos", "skimage_camera.png"));
        Assert.Contains("above the limit", ReasonFor(small, png));
    }

    /// <summary>A valid PNG signature + IHDR declaring the size, one tiny IDAT and IEND (correct CRCs).</summary>
    internal static byte[] PngDeclaring(int width, int height)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        Chunk(ms, "IHDR", ihdr);
        Chunk(ms, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
        Encoding.ASCII.GetBytes(type, 0, 4, header, 4);
        s.Write(header);
        s.Write(data);
        var crcInput = header[4..].Concat(data).ToArray();
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(crcInput));
        s.Write(crc);
    }

    private static uint Crc32(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
