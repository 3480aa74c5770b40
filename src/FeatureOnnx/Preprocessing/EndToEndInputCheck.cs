using System.Buffers.Binary;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// The checks an encoded image passes before it reaches an end-to-end model's <c>DecodeImage</c> operator
/// (onnxruntime-extensions 0.14: IJG libjpeg 9 and libpng 1.6 inside). That operator trusts its input: libjpeg's
/// default error handler calls <c>exit(1)</c> on a stream it cannot read (e.g. "Not a JPEG file"), a JPEG that ends
/// early makes its memory source suspend and the read loop spin forever, and any format but PNG is handed to libjpeg.
/// So: <see cref="ImageDecoder.Identify"/>'s checks (recognised, pixel limit, complete structure), then JPEG or
/// PNG only, for JPEG a frame libjpeg 9 decodes to 1 or 3 channels (8-bit, Huffman or arithmetic, not lossless;
/// CMYK would come out as 4 raw channels), and no 16-bit greyscale PNG (libpng keeps the high byte, PIL clips). What still gets through is handled by running the model in a worker
/// process with a time limit.
/// </summary>
public sealed class EndToEndInputCheck(long maxPixels = 100_000_000)
{
    private readonly ImageDecoder _decoder = new(new ImageDecoderOptions { MaxPixels = maxPixels });

    /// <summary>Checks one file.</summary>
    /// <returns>The header's facts (the orientation goes to the model's <c>exif_orientation</c> input).</returns>
    /// <exception cref="ImageDecodeException">The file must not reach DecodeImage; the message says why.</exception>
    public EncodedImageInfo Check(ReadOnlyMemory<byte> encoded)
    {
        var info = _decoder.Identify(encoded);
        var problem = info.Format switch
        {
            "JPEG" => CheckJpegFrame(encoded.Span),
            "PNG" => CheckPngHeader(encoded.Span),
            _ => $"{info.Format} is not supported by end-to-end models (their DecodeImage reads JPEG and PNG only)",
        };
        return problem is null ? info : throw new ImageDecodeException(problem);
    }

    private static string? CheckPngHeader(ReadOnlySpan<byte> d)
    {
        // IHDR is the first chunk (signature 8 bytes, length 4, type 4): width, height, bit depth, colour type.
        if (d.Length < 26) return "PNG: header incomplete";
        var bitDepth = d[24];
        var colourType = d[25];
        return bitDepth == 16 && colourType == 0
            ? "16-bit greyscale PNG is not supported by end-to-end models: DecodeImage keeps the high byte where PIL clips the value to 255"
            : null;
    }

    private static string? CheckJpegFrame(ReadOnlySpan<byte> d)
    {
        var i = 2;
        while (i + 4 <= d.Length)
        {
            if (d[i] != 0xFF) return $"JPEG: expected a marker at byte {i}";
            var marker = d[i + 1];
            if (marker == 0xFF) { i++; continue; }
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) { i += 2; continue; }
            var length = BinaryPrimitives.ReadUInt16BigEndian(d[(i + 2)..]);
            if (marker is >= 0xC0 and <= 0xCF && marker is not (0xC4 or 0xC8 or 0xCC))
            {
                if (marker is not (0xC0 or 0xC1 or 0xC2 or 0xC9 or 0xCA))
                    return $"JPEG frame type SOF{marker - 0xC0} (lossless or hierarchical) is not decoded by the end-to-end model's libjpeg";
                if (i + 10 > d.Length) return "JPEG: frame header incomplete";
                var precision = d[i + 4];
                var components = d[i + 9];
                if (precision != 8) return $"{precision}-bit JPEG is not decoded by the end-to-end model's libjpeg (8-bit only)";
                if (components is not (1 or 3))
                    return $"JPEG with {components} components (CMYK/YCCK) is not supported by end-to-end models: DecodeImage returns them unconverted";
                return null;
            }
            if (marker == 0xDA) break;
            i += 2 + length;
        }
        return "JPEG: no frame header before the image data";
    }
}
