namespace FeatureOnnx.Preprocessing;

/// <summary>
/// The eight EXIF orientations applied to an RGB image as Pillow's <c>ImageOps.exif_transpose</c> does
/// (2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 anticlockwise).
/// </summary>
public static class ExifOrientation
{
    /// <summary>Returns the upright image (the same instance for orientation 1 or an unknown value).</summary>
    public static RgbImage Apply(RgbImage image, int orientation)
    {
        if (orientation is < 2 or > 8) return image;
        var (w, h) = (image.Width, image.Height);
        var swap = orientation >= 5;
        var (ow, oh) = swap ? (h, w) : (w, h);
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (var y = 0; y < oh; y++)
        {
            for (var x = 0; x < ow; x++)
            {
                var (sx, sy) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x), // 8
                };
                var s = (sy * w + sx) * 3;
                var d = (y * ow + x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(ow, oh, dst);
    }
}
