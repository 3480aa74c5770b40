using System.Buffers;
using FeatureOnnx.Models;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// One encoded image in, one input slot out, as the manifest says: decode (at the <see cref="Preprocessing.DecodeScale"/>
/// in force, EXIF orientation, PIL's <c>convert('RGB')</c>) -> Resize(shorter side, PIL filter) -> CenterCrop ->
/// ToTensor -> Normalize.
/// Thread-safe: one instance serves all decode workers.
/// </summary>
public sealed class ImagePreprocessor
{
    private readonly ImageDecoder _decoder;
    private readonly TensorWriter _writer;

    /// <summary>The preprocessing in force.</summary>
    public PreprocessSpec Spec { get; }

    /// <summary>The model input being fed.</summary>
    public ModelInput Input { get; }

    /// <summary>The decoder in use (which library decodes JPEG: <see cref="ImageDecoder.Decoders"/>).</summary>
    public ImageDecoder Decoder => _decoder;

    /// <summary>How JPEGs are scaled while decoding; the resize target it works from is the manifest's shorter side.</summary>
    public DecodeScale DecodeScale { get; }

    /// <summary>Images decoded so far at each scale (warm-up excluded); safe to read while workers run.</summary>
    public DecodeScaleCounts DecodeScaleCounts { get; } = new();


    /// <summary>Creates a preprocessor for a model.</summary>
    /// <param name="manifest">Supplies the input and the preprocessing.</param>
    /// <param name="maxPixels">Refuse images whose header declares more pixels (default 100 megapixels).</param>
    /// <param name="preferTurboJpeg">Decode JPEG with libjpeg-turbo when available (default); false: ImageSharp.</param>
    /// <param name="decodeScale">Decode large JPEGs at 1/2, 1/4 or 1/8 scale (<see cref="Preprocessing.DecodeScale"/>).
    /// Default: <see cref="DecodeScale.Exact"/>, full size.</param>
    /// <exception cref="DecoderUnavailableException">FEATUREONNX_TURBOJPEG names a library that cannot be loaded.</exception>
    public ImagePreprocessor(ModelManifest manifest, long maxPixels = 100_000_000, bool preferTurboJpeg = true, DecodeScale? decodeScale = null)
    {
        Spec = manifest.Preprocess;
        Input = manifest.Input;
        DecodeScale = decodeScale ?? DecodeScale.Exact;
        _decoder = new ImageDecoder(new ImageDecoderOptions { MaxPixels = maxPixels, ApplyExifOrientation = Spec.ApplyExifOrientation, PreferTurboJpeg = preferTurboJpeg });
        _writer = new TensorWriter(Input, Spec);
    }

    /// <summary>Floats in one input slot.</summary>
    public int SlotLength => _writer.SlotLength;

    /// <summary>Bytes in one crop (Height x Width x 3), the slot of a uint8 input.</summary>
    public int CropLength => Input.Height * Input.Width * 3;

    /// <summary>Decodes, resizes and crops to the model's input size: HWC RGB bytes, before normalisation.</summary>
    /// <exception cref="ImageDecodeException">The input is not a usable image.</exception>
    public byte[] Crop(ReadOnlyMemory<byte> encoded)
    {
        var crop = new byte[CropLength];
        CropInto(encoded, crop, count: true);
        return crop;
    }

    /// <summary>Decodes, resizes and crops into <paramref name="crop"/> (<see cref="CropLength"/> bytes, HWC RGB): the slot of a uint8 input.</summary>
    /// <exception cref="ImageDecodeException">The input is not a usable image.</exception>
    public void Crop(ReadOnlyMemory<byte> encoded, Span<byte> crop)
    {
        if (crop.Length < CropLength) throw new ArgumentException("crop buffer smaller than the model input", nameof(crop));
        CropInto(encoded, crop, count: true);
    }

    /// <summary>Preprocesses one encoded image into <paramref name="slot"/>.</summary>
    /// <exception cref="ImageDecodeException">The input is not a usable image.</exception>
    public void Preprocess(ReadOnlyMemory<byte> encoded, Span<float> slot) => PreprocessCounted(encoded, slot, count: true);

    private void PreprocessCounted(ReadOnlyMemory<byte> encoded, Span<float> slot, bool count)
    {
        var length = CropLength;
        var crop = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            CropInto(encoded, crop, count);
            _writer.Write(crop.AsSpan(0, length), slot);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(crop);
        }
    }

    /// <summary>
    /// Runs a tiny embedded JPEG and PNG through the whole preprocessing once, so that the JIT compiles the decode,
    /// resize and tensor code before the first real batch (the pipeline does it on a spare core while ONNX Runtime
    /// builds its session).
    /// </summary>
    public void WarmUp()
    {
        var slot = new float[SlotLength];
        foreach (var image in WarmUpImages)
            PreprocessCounted(Convert.FromBase64String(image), slot, count: false);
    }

    // 24x16 JPEG (4:2:0, quality 50) and 6x4 PNG, made with Pillow.
    internal static readonly string[] WarmUpImages =
    [
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAQABgDASIAAhEBAxEB/8QAFwAAAwEAAAAAAAAAAAAAAAAAAAUGBP/EAB8QAAEDAwUAAAAAAAAAAAAAAAADBGEBAiEFERIxUf/EABcBAAMBAAAAAAAAAAAAAAAAAAIDBAX/xAAeEQACAQMFAAAAAAAAAAAAAAAAAgQBAxIREyFBgf/aAAwDAQACEQMRAD8AlEWMG5FhA3QYwMUGHWCW224IjTtOxIjp0AVNjSlmOO9fACZ46VxZufTftTq4n//Z",
        "iVBORw0KGgoAAAANSUhEUgAAAAYAAAAECAIAAAAiZtkUAAAAPklEQVR42iXKOxJAMBQAwPWZp1WIcAAh4wSpnNCdFbbebt6GIqq4TFUUMWrBQiaxkkdPkDkp3Oz/Shw0et4PjboD+JuVMSkAAAAASUVORK5CYII=",
    ];

    private void CropInto(ReadOnlyMemory<byte> encoded, Span<byte> crop, bool count)
    {
        var decoded = _decoder.Decode(encoded, DecodeScale, Spec.ResizeShorter ?? 0);
        var image = decoded.Image;
        if (DecodeScale.Mode == DecodeScaleMode.Auto)
        {
            // Auto keeps the exact path's geometry: the resized size comes from the full-size image, and the resize
            // reads the part of the scaled image that the full image covers. Sizing from the rounded scaled size, as
            // PIL's draft does, moves the crop by up to a pixel and cost 6-8 levels of mean |diff| on 3 MP photos.
            var (fw, fh) = Spec.ResizeShorter is { } target
                ? CenterCrop.ResizedSize(decoded.FullWidth, decoded.FullHeight, target)
                : (decoded.FullWidth, decoded.FullHeight);
            PilResize.ResizeWindow(image.Pixels, image.Width, image.Height, decoded.FullImageBox, fw, fh, Spec.Interpolation,
                CenterCrop.Window(fw, fh, Input.Height, Input.Width), crop);
        }
        else
        {
            // Exact, and draft as PIL: torchvision's Resize works from the size the (scaled) decode has.
            var (w, h) = Spec.ResizeShorter is { } shorter
                ? CenterCrop.ResizedSize(image.Width, image.Height, shorter)
                : (image.Width, image.Height);
            var window = CenterCrop.Window(w, h, Input.Height, Input.Width);
            PilResize.ResizeWindow(image.Pixels, image.Width, image.Height, w, h, Spec.Interpolation, window, crop);
        }
        if (count) DecodeScaleCounts.Add(decoded.ScaleDenominator, decoded.ScaleDenominator == 1 && decoded.AutoDenominator > 1);
    }
}
