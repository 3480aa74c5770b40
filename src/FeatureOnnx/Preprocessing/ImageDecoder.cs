using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;

namespace FeatureOnnx.Preprocessing;

/// <summary>Options for <see cref="ImageDecoder"/>.</summary>
public sealed record ImageDecoderOptions
{
    /// <summary>Images whose header declares more pixels than this are refused before their pixels are decoded
    /// (decompression bombs). Default: 100 million (100 megapixels).</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Apply the EXIF orientation tag (PIL's <c>ImageOps.exif_transpose</c>). Default: true.</summary>
    public bool ApplyExifOrientation { get; init; } = true;

    /// <summary>Decode JPEG with libjpeg-turbo when it can be loaded (Pillow's pixels); false always uses ImageSharp.
    /// Default: true.</summary>
    public bool PreferTurboJpeg { get; init; } = true;
}

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved R,G,B.</summary>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
/// <param name="Pixels">Width * Height * 3 bytes.</param>
public sealed record RgbImage(int Width, int Height, byte[] Pixels);

/// <summary>An image from <see cref="ImageDecoder.Decode(ReadOnlyMemory{byte}, DecodeScale, int)"/>, with the scale it was decoded at.</summary>
/// <param name="Image">The pixels, EXIF orientation applied.</param>
/// <param name="ScaleDenominator">1 (full size), or 2, 4, 8: a JPEG decoded by libjpeg-turbo at 1/2, 1/4, 1/8 of its size.</param>
/// <param name="AutoDenominator">The denominator <see cref="DecodeScale.Auto"/> would have chosen for this file (1 for
/// what cannot be scaled), so that a full-size run can say how much it could save.</param>
/// <param name="FullWidth">Columns of the full-size image, EXIF orientation applied (what an exact decode gives).</param>
/// <param name="FullHeight">Rows of the full-size image, EXIF orientation applied.</param>
/// <param name="FullImageBox">Where the full image lies in <paramref name="Image"/>'s pixels: (0, 0, W / s, H / s),
/// oriented; a scaled decode rounds its size up, so its last column or row covers less than s full-size pixels.</param>
public sealed record DecodedImage(RgbImage Image, int ScaleDenominator, int AutoDenominator, int FullWidth, int FullHeight, PilResize.SourceBox FullImageBox)
{
    /// <summary>An image decoded at full size.</summary>
    public DecodedImage(RgbImage image, int autoDenominator)
        : this(image, 1, autoDenominator, image.Width, image.Height, new PilResize.SourceBox(0, 0, image.Width, image.Height)) { }
}

/// <summary>What an image's header says, after <see cref="ImageDecoder.Identify"/>'s checks.</summary>
/// <param name="Format">ImageSharp's format name: JPEG, PNG, BMP, GIF, TIFF, Webp, TGA, PBM.</param>
/// <param name="Width">Columns, as stored (before EXIF orientation).</param>
/// <param name="Height">Rows, as stored.</param>
/// <param name="Orientation">EXIF Orientation tag, 1 (as stored) when absent.</param>
public sealed record EncodedImageInfo(string Format, int Width, int Height, int Orientation);

/// <summary>A decoder that was asked for by name cannot be loaded; the message names it and the fix. The run cannot go on
/// as asked (unlike <see cref="ImageDecodeException"/>, which concerns one input).</summary>
public sealed class DecoderUnavailableException(string message) : Exception(message);

/// <summary>An input that could not be turned into an image; <see cref="Exception.Message"/> is the reason written to errors.csv.</summary>
public sealed class ImageDecodeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Decodes JPEG with libjpeg-turbo when <c>libturbojpeg.so.0</c> is present (the decoder Pillow uses: identical
/// pixels), otherwise, and for PNG, BMP, GIF (first frame), TIFF (first page), WebP, TGA and PBM/PGM/PPM, with
/// ImageSharp, and converts to 8-bit RGB the way Pillow's <c>Image.open(f).convert('RGB')</c> does: alpha is dropped (not
/// composited), palettes are looked up, 16-bit RGB keeps the high byte, and 16-bit greyscale (PIL mode "I") is
/// clipped to 255 as PIL clips it. The pixel count is checked from the header before any pixel is decoded.
/// </summary>
public sealed class ImageDecoder
{
    private readonly Configuration _configuration;
    private readonly TurboJpegDecoder? _turboJpeg;

    /// <summary>The options in force.</summary>
    public ImageDecoderOptions Options { get; }

    /// <summary>Which library decodes JPEG files: "libjpeg-turbo" (exact PIL parity) or "ImageSharp" (about 1 level off).</summary>
    public string JpegDecoderName => _turboJpeg is null ? "ImageSharp" : "libjpeg-turbo";

    /// <summary>The decoder of each kind of file, for run summaries: <c>jpeg</c> (libjpeg-turbo with version and
    /// file, or ImageSharp) and <c>other</c> (ImageSharp with its version).</summary>
    public IReadOnlyDictionary<string, string> Decoders => new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        ["jpeg"] = TurboJpegDecoder.Description is { } turbo && _turboJpeg is not null ? turbo : ImageSharpName,
        ["other"] = ImageSharpName,
    };

    /// <summary>
    /// Null when JPEG is decoded by libjpeg-turbo; otherwise one line saying that it is not, why, and what differs
    /// (ImageSharp's JPEG pixels are not PIL's), for the run's warnings. A deliberate choice
    /// (<see cref="ImageDecoderOptions.PreferTurboJpeg"/> false) is not warned about.
    /// </summary>
    public string? JpegFallbackWarning => _turboJpeg is not null || !Options.PreferTurboJpeg ? null
        : $"JPEG files are decoded by ImageSharp, not libjpeg-turbo ({TurboJpegDecoder.UnavailableReason}): " +
          "their crops differ from PIL's (about 1 level on average, more on some files), so features are not PIL-exact.";

    // The informational version is the package's (2.1.13); the assembly version stays 2.0.0.0 across 2.x releases.
    private static readonly string ImageSharpName = "ImageSharp " +
        (typeof(Image).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0]
         ?? typeof(Image).Assembly.GetName().Version?.ToString(3));

    /// <summary>Creates a decoder. Each instance has its own ImageSharp configuration (contiguous buffers, first frame only).</summary>
    /// <exception cref="DecoderUnavailableException"><see cref="TurboJpegDecoder.EnvironmentVariable"/> names a library that
    /// cannot be loaded (<see cref="TurboJpegDecoder.ConfigurationError"/>): a decoder asked for by name is never
    /// silently replaced.</exception>
    public ImageDecoder(ImageDecoderOptions? options = null)
    {
        Options = options ?? new ImageDecoderOptions();
        _configuration = Configuration.Default.Clone();
        _configuration.PreferContiguousImageBuffers = true;
        _configuration.MaxDegreeOfParallelism = 1; // callers parallelise across images
        _configuration.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = SixLabors.ImageSharp.Metadata.FrameDecodingMode.First });
        _configuration.ImageFormatsManager.SetDecoder(TiffFormat.Instance, new TiffDecoder { DecodingMode = SixLabors.ImageSharp.Metadata.FrameDecodingMode.First });
        if (Options.PreferTurboJpeg && TurboJpegDecoder.ConfigurationError is { } error)
            throw new DecoderUnavailableException(error);
        _turboJpeg = Options.PreferTurboJpeg ? TurboJpegDecoder.TryCreate() : null;
    }

    /// <summary>
    /// Reads the header only and applies every check made before pixels are decoded: not empty, a recognised
    /// format, a non-empty size within <see cref="ImageDecoderOptions.MaxPixels"/>, and a complete structure.
    /// </summary>
    /// <exception cref="ImageDecodeException">A check failed; the message says which.</exception>
    public EncodedImageInfo Identify(ReadOnlyMemory<byte> encoded)
    {
        if (encoded.Length == 0) throw new ImageDecodeException("empty file (0 bytes)");
        using var stream = AsStream(encoded);
        return IdentifyChecked(encoded, stream);
    }

    private EncodedImageInfo IdentifyChecked(ReadOnlyMemory<byte> encoded, Stream stream)
    {
        var info = Image.Identify(_configuration, stream, out var format);
        if (info is null || format is null)
            throw new ImageDecodeException("not a recognised image (supported: JPEG, PNG, BMP, GIF, TIFF, WebP, TGA, PBM/PGM/PPM)");
        var pixels = (long)info.Width * info.Height;
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageDecodeException($"{format.Name} header declares an empty image ({info.Width}x{info.Height})");
        if (pixels > Options.MaxPixels)
            throw new ImageDecodeException($"{format.Name} header declares {info.Width}x{info.Height} = {pixels / 1e6:0.#} megapixels, above the limit of {Options.MaxPixels / 1e6:0.#} (raise ImageDecoderOptions.MaxPixels to accept it)");
        EncodedImageIntegrity.ThrowIfTruncated(encoded.Span, format.Name);
        return new EncodedImageInfo(format.Name, info.Width, info.Height, OrientationOf(info));
    }

    /// <summary>Decodes encoded image bytes at full size.</summary>
    /// <exception cref="ImageDecodeException">Empty, not an image, too large, truncated or corrupt; the message says which.</exception>
    public RgbImage Decode(ReadOnlyMemory<byte> encoded) => Decode(encoded, DecodeScale.Exact, 0).Image;

    /// <summary>
    /// Decodes encoded image bytes, a JPEG possibly at a reduced scale (libjpeg-turbo's DCT scaling) chosen by
    /// <paramref name="scale"/> for an image to be resized to a shorter side of <paramref name="resizeTarget"/>
    /// (&lt;= 0: no resize, full size). The scale is chosen from the stored size, before EXIF orientation, which is
    /// applied to the scaled image, as PIL's <c>draft</c> then <c>exif_transpose</c> do. Other formats, and JPEGs
    /// when libjpeg-turbo is not loaded, are decoded at full size. Every check (pixel limit, structure) is made on
    /// the file as for a full-size decode.
    /// </summary>
    /// <exception cref="ImageDecodeException">Empty, not an image, too large, truncated or corrupt; the message says which.</exception>
    public DecodedImage Decode(ReadOnlyMemory<byte> encoded, DecodeScale scale, int resizeTarget)
    {
        ArgumentNullException.ThrowIfNull(scale);
        if (encoded.Length == 0) throw new ImageDecodeException("empty file (0 bytes)");
        using var stream = AsStream(encoded);
        var header = IdentifyChecked(encoded, stream);
        var format = header.Format;

        var orientation = Options.ApplyExifOrientation ? header.Orientation : 1;
        if (format == "JPEG" && _turboJpeg is not null)
        {
            var denominator = scale.DenominatorFor(header.Width, header.Height, resizeTarget);
            var auto = DecodeScale.Auto.DenominatorFor(header.Width, header.Height, resizeTarget);
            var jpeg = _turboJpeg.DecodeStructureChecked(encoded.Span, Options.MaxPixels, denominator); // IdentifyChecked walked the structure
            var upright = ExifOrientation.Apply(jpeg, orientation);
            if (denominator == 1) return new DecodedImage(upright, auto);
            var swap = orientation is >= 5 and <= 8;
            return new DecodedImage(upright, denominator, auto, swap ? header.Height : header.Width, swap ? header.Width : header.Height,
                FullImageBox(jpeg.Width, jpeg.Height, header.Width / (double)denominator, header.Height / (double)denominator, orientation));
        }

        Image image;
        try
        {
            stream.Position = 0;
            image = Image.Load(_configuration, stream);
        }
        catch (Exception e) when (e is ImageFormatException or InvalidImageContentException or UnknownImageFormatException or NotSupportedException or InvalidOperationException or IndexOutOfRangeException or ArgumentException)
        {
            throw new ImageDecodeException($"corrupt {format}: {e.Message}", e);
        }
        using (image)
            return new DecodedImage(ExifOrientation.Apply(ToPilRgb(image), orientation), 1);
    }

    /// <summary>
    /// The box [0, w] x [0, h] of a scaled decode of <paramref name="width"/> x <paramref name="height"/> pixels (w, h
    /// the exact fractions, a little less than the rounded-up size), carried through the EXIF orientation: an axis
    /// that the orientation reverses has the partial pixel first, so its box starts at size - extent.
    /// </summary>
    private static PilResize.SourceBox FullImageBox(int width, int height, double w, double h, int orientation)
    {
        // Per orientation (ExifOrientation.Apply): is the stored x axis reversed, is the stored y axis reversed, are they swapped.
        var (flipX, flipY) = orientation switch
        {
            2 => (true, false),
            3 => (true, true),
            4 => (false, true),
            6 => (false, true),
            7 => (true, true),
            8 => (true, false),
            _ => (false, false), // 1, 5
        };
        var (x0, x1) = flipX ? (width - w, (double)width) : (0, w);
        var (y0, y1) = flipY ? (height - h, (double)height) : (0, h);
        return orientation is >= 5 and <= 8 ? new PilResize.SourceBox(y0, x0, y1, x1) : new PilResize.SourceBox(x0, y0, x1, y1);
    }

    private static int OrientationOf(IImageInfo info)
    {
        var value = info.Metadata.ExifProfile?.GetValue(SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifTag.Orientation);
        return value is null ? 1 : value.Value;
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> data) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);

    private static RgbImage ToPilRgb(Image image)
    {
        var w = image.Width;
        var h = image.Height;
        var dst = new byte[w * h * 3];
        switch (image)
        {
            case Image<L16> grey16: // PIL opens 16-bit grey as mode "I"; convert('RGB') clips each value to 0..255.
                grey16.ProcessPixelRows(a =>
                {
                    for (var y = 0; y < h; y++)
                    {
                        var row = a.GetRowSpan(y);
                        var o = y * w * 3;
                        for (var x = 0; x < w; x++, o += 3)
                            dst[o] = dst[o + 1] = dst[o + 2] = (byte)Math.Min(row[x].PackedValue, (ushort)255);
                    }
                });
                break;
            case Image<La32> greyAlpha16: // PIL reads 16-bit grey+alpha as LA with the high byte of each sample.
                greyAlpha16.ProcessPixelRows(a =>
                {
                    for (var y = 0; y < h; y++)
                    {
                        var row = a.GetRowSpan(y);
                        var o = y * w * 3;
                        for (var x = 0; x < w; x++, o += 3)
                            dst[o] = dst[o + 1] = dst[o + 2] = (byte)(row[x].L >> 8);
                    }
                });
                break;
            case Image<Rgb48> rgb48: // PIL keeps the high byte of 16-bit samples.
                rgb48.ProcessPixelRows(a =>
                {
                    for (var y = 0; y < h; y++)
                    {
                        var row = a.GetRowSpan(y);
                        var o = y * w * 3;
                        for (var x = 0; x < w; x++, o += 3)
                        {
                            dst[o] = (byte)(row[x].R >> 8);
                            dst[o + 1] = (byte)(row[x].G >> 8);
                            dst[o + 2] = (byte)(row[x].B >> 8);
                        }
                    }
                });
                break;
            case Image<Rgba64> rgba64:
                rgba64.ProcessPixelRows(a =>
                {
                    for (var y = 0; y < h; y++)
                    {
                        var row = a.GetRowSpan(y);
                        var o = y * w * 3;
                        for (var x = 0; x < w; x++, o += 3)
                        {
                            dst[o] = (byte)(row[x].R >> 8);
                            dst[o + 1] = (byte)(row[x].G >> 8);
                            dst[o + 2] = (byte)(row[x].B >> 8);
                        }
                    }
                });
                break;
            default: // 8-bit types: Rgb24, Rgba32 (alpha dropped, as PIL does), L8, La16, palettes (already expanded).
                using (var rgb = image as Image<Rgb24> ?? image.CloneAs<Rgb24>())
                {
                    rgb.ProcessPixelRows(a =>
                    {
                        for (var y = 0; y < h; y++)
                            MemoryMarshal.AsBytes(a.GetRowSpan(y)).CopyTo(dst.AsSpan(y * w * 3, w * 3));
                    });
                }
                break;
        }
        return new RgbImage(w, h, dst);
    }
}
