using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Preprocessing;

[Trait("Category", TestCategory.Fast)]
public sealed class ExifOrientationTests
{
    // A 3x2 image whose pixels are 1..6 in red (green +10, blue +20, to see that channels travel together):
    //   1 2 3
    //   4 5 6
    private static RgbImage Stored()
    {
        var pixels = new byte[6 * 3];
        for (var i = 0; i < 6; i++) (pixels[i * 3], pixels[i * 3 + 1], pixels[i * 3 + 2]) = ((byte)(i + 1), (byte)(i + 11), (byte)(i + 21));
        return new RgbImage(3, 2, pixels);
    }

    // Worked out by hand from the EXIF definitions, and what PIL 9.4's ImageOps.exif_transpose gives (checked once).
    [Theory]
    [InlineData(2, 3, 2, new byte[] { 3, 2, 1, 6, 5, 4 })]  // mirror left-right
    [InlineData(3, 3, 2, new byte[] { 6, 5, 4, 3, 2, 1 })]  // rotate 180
    [InlineData(4, 3, 2, new byte[] { 4, 5, 6, 1, 2, 3 })]  // flip top-bottom
    [InlineData(5, 2, 3, new byte[] { 1, 4, 2, 5, 3, 6 })]  // transpose (main diagonal)
    [InlineData(6, 2, 3, new byte[] { 4, 1, 5, 2, 6, 3 })]  // rotate 90 clockwise
    [InlineData(7, 2, 3, new byte[] { 6, 3, 5, 2, 4, 1 })]  // transverse (anti-diagonal)
    [InlineData(8, 2, 3, new byte[] { 3, 6, 2, 5, 1, 4 })]  // rotate 90 anticlockwise
    public void Each_orientation_gives_the_upright_image(int orientation, int width, int height, byte[] reds)
    {
        var upright = ExifOrientation.Apply(Stored(), orientation);
        Assert.Equal((width, height), (upright.Width, upright.Height));
        var expected = reds.SelectMany(r => new[] { r, (byte)(r + 10), (byte)(r + 20) }).ToArray();
        Assert.Equal(expected, upright.Pixels);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    [InlineData(9)]
    public void Upright_or_unknown_orientations_return_the_image_itself(int orientation)
    {
        var stored = Stored();
        Assert.Same(stored, ExifOrientation.Apply(stored, orientation));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(7)]
    public void Mirrors_transposes_and_half_turns_undo_themselves(int orientation)
    {
        var stored = Stored();
        Assert.Equal(stored.Pixels, ExifOrientation.Apply(ExifOrientation.Apply(stored, orientation), orientation).Pixels);
    }

    [Fact]
    public void Quarter_turns_6_and_8_undo_each_other()
    {
        var stored = Stored();
        Assert.Equal(stored.Pixels, ExifOrientation.Apply(ExifOrientation.Apply(stored, 6), 8).Pixels);
        Assert.Equal(stored.Pixels, ExifOrientation.Apply(ExifOrientation.Apply(stored, 8), 6).Pixels);
    }
}
