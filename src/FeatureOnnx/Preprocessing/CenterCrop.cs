namespace FeatureOnnx.Preprocessing;

/// <summary>torchvision's Resize(int) and CenterCrop geometry, with its exact rounding.</summary>
public static class CenterCrop
{
    /// <summary>
    /// Size after torchvision's <c>Resize(shorter)</c>: the shorter side becomes <paramref name="shorter"/>, the longer
    /// <c>int(shorter * long / short)</c> (truncated, as Python's <c>int()</c>).
    /// </summary>
    public static (int Width, int Height) ResizedSize(int width, int height, int shorter)
    {
        if (width <= height)
            return (shorter, (int)(shorter * (double)height / width));
        return ((int)(shorter * (double)width / height), shorter);
    }

    /// <summary>
    /// The crop window of torchvision's <c>CenterCrop</c> on an image of the given size. Offsets are
    /// <c>int(round((size - crop) / 2))</c> with Python's round-half-to-even; when the crop is larger than the image,
    /// the offset is negative: torchvision pads <c>(crop - size) // 2</c> zeros before the image.
    /// </summary>
    public static PilResize.Window Window(int width, int height, int cropHeight, int cropWidth) =>
        new(Offset(width, cropWidth), Offset(height, cropHeight), cropWidth, cropHeight);

    private static int Offset(int size, int crop) =>
        crop > size ? -((crop - size) / 2) : (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);
}
