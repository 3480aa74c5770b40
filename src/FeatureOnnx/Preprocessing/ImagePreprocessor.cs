using FeatureOnnx.Models;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// One encoded image in, one input slot out, as the manifest says: decode (EXIF orientation, PIL's
/// <c>convert('RGB')</c>) -> Resize(shorter side, PIL filter) -> CenterCrop -> ToTensor -> Normalize.
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

    /// <summary>Creates a preprocessor for a model.</summary>
    /// <param name="manifest">Supplies the input and the preprocessing.</param>
    /// <param name="maxPixels">Refuse images whose header declares more pixels (default 100 megapixels).</param>
    public ImagePreprocessor(ModelManifest manifest, long maxPixels = 100_000_000)
    {
        Spec = manifest.Preprocess;
        Input = manifest.Input;
        _decoder = new ImageDecoder(new ImageDecoderOptions { MaxPixels = maxPixels, ApplyExifOrientation = Spec.ApplyExifOrientation });
        _writer = new TensorWriter(Input, Spec);
    }

    /// <summary>Floats in one input slot.</summary>
    public int SlotLength => _writer.SlotLength;

    /// <summary>Decodes, resizes and crops to the model's input size: HWC RGB bytes, before normalisation.</summary>
    /// <exception cref="ImageDecodeException">The input is not a usable image.</exception>
    public byte[] Crop(ReadOnlyMemory<byte> encoded)
    {
        var image = _decoder.Decode(encoded);
        var (w, h) = Spec.ResizeShorter is { } shorter
            ? CenterCrop.ResizedSize(image.Width, image.Height, shorter)
            : (image.Width, image.Height);
        var window = CenterCrop.Window(w, h, Input.Height, Input.Width);
        var crop = new byte[Input.Height * Input.Width * 3];
        PilResize.ResizeWindow(image.Pixels, image.Width, image.Height, w, h, Spec.Interpolation, window, crop);
        return crop;
    }

    /// <summary>Preprocesses one encoded image into <paramref name="slot"/>.</summary>
    /// <exception cref="ImageDecodeException">The input is not a usable image.</exception>
    public void Preprocess(ReadOnlyMemory<byte> encoded, Span<float> slot) => _writer.Write(Crop(encoded), slot);
}
