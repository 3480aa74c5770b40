using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Preprocessing;

[Trait("Category", TestCategory.Fast)]
public sealed class PilResizeTests
{
    private static byte[] Row(params byte[] greys) => greys.SelectMany(g => new[] { g, g, g }).ToArray();

    [Fact]
    public void Bilinear_shrink_by_two_matches_hand_computed_PIL_weights()
    {
        // 4 -> 2 columns: scale 2, support 2. Output 0 takes columns 0,1,2 with weights 3/7, 3/7, 1/7;
        // output 1 takes columns 1,2,3 with 1/7, 3/7, 3/7. Values 0,70,140,210 give exactly 50 and 160
        // (Pillow 9.4: Image.fromarray(...).resize((2, 1), Image.BILINEAR) prints the same).
        var dst = new byte[2 * 3];
        PilResize.ResizeWindow(Row(0, 70, 140, 210), 4, 1, 2, 1, Interpolation.Bilinear, new PilResize.Window(0, 0, 2, 1), dst);
        Assert.Equal(Row(50, 160), dst);
    }

    [Fact]
    public void Intermediate_rows_are_rounded_to_8_bits_between_passes()
    {
        // 2x2 -> 1x1 box filter: horizontal pass gives (1+2)/2 = 1.5 -> 2 and (2+2)/2 = 2, vertical (2+2)/2 = 2.
        // A one-pass float average would give 1.75 -> 2 too, so use values where the rounding differs:
        // rows [1,2] and [1,2] -> horizontal 2 and 2 -> 2; float: 1.5 -> 2 (same). Rows [0,1],[0,1] -> 1,1 -> 1; float 0.5 -> 1.
        // PIL rounds half up in fixed point: (0*w + 1*w + 2^21) >> 22 with w = 2^21 gives 1.
        var dst = new byte[3];
        var src = Row(0, 1).Concat(Row(0, 1)).ToArray();
        PilResize.ResizeWindow(src, 2, 2, 1, 1, Interpolation.Box, new PilResize.Window(0, 0, 1, 1), dst);
        Assert.Equal(Row(1), dst);
    }

    [Fact]
    public void Same_size_is_the_identity_and_windows_outside_the_image_are_zero()
    {
        var src = Row(10, 20, 30, 40);
        var dst = new byte[6 * 3];
        PilResize.ResizeWindow(src, 4, 1, 4, 1, Interpolation.Bilinear, new PilResize.Window(-1, 0, 6, 1), dst);
        Assert.Equal(Row(0, 10, 20, 30, 40, 0), dst);
    }

    [Fact]
    public void A_window_equals_the_same_region_of_the_full_resize()
    {
        var rng = new Random(7);
        var src = new byte[37 * 23 * 3];
        rng.NextBytes(src);
        foreach (var filter in new[] { Interpolation.Bilinear, Interpolation.Bicubic, Interpolation.Lanczos, Interpolation.Nearest, Interpolation.Hamming, Interpolation.Box })
        {
            var full = new byte[19 * 11 * 3];
            PilResize.ResizeWindow(src, 37, 23, 19, 11, filter, new PilResize.Window(0, 0, 19, 11), full);
            var part = new byte[7 * 5 * 3];
            PilResize.ResizeWindow(src, 37, 23, 19, 11, filter, new PilResize.Window(6, 3, 7, 5), part);
            for (var y = 0; y < 5; y++)
                Assert.Equal(full.AsSpan(((y + 3) * 19 + 6) * 3, 7 * 3).ToArray(), part.AsSpan(y * 7 * 3, 7 * 3).ToArray());
        }
    }
}

[Trait("Category", TestCategory.Fast)]
public sealed class CenterCropTests
{
    [Theory]
    // torchvision 0.14: Resize(256) on (w, h) -> (int(256 * long / short), 256) for landscape.
    [InlineData(451, 300, 384, 256)]
    [InlineData(259, 194, 341, 256)]
    [InlineData(500, 500, 256, 256)]
    [InlineData(510, 532, 256, 267)]
    [InlineData(2268, 1512, 384, 256)]
    public void Resized_size_truncates_like_python_int(int w, int h, int rw, int rh) =>
        Assert.Equal((rw, rh), CenterCrop.ResizedSize(w, h, 256));

    [Theory]
    // Offsets use Python's round(): half to even. (341-224)/2 = 58.5 -> 58; (273-224)/2 = 24.5 -> 24; (379-224)/2 = 77.5 -> 78.
    [InlineData(341, 256, 58, 16)]
    [InlineData(273, 256, 24, 16)]
    [InlineData(379, 256, 78, 16)]
    // Smaller than the crop: torchvision pads (224 - w) // 2 on the left/top.
    [InlineData(99, 61, -62, -81)]
    public void Window_offsets_follow_torchvision(int w, int h, int left, int top)
    {
        var window = CenterCrop.Window(w, h, 224, 224);
        Assert.Equal(left, window.Left);
        Assert.Equal(top, window.Top);
        Assert.Equal(224, window.Width);
    }
}
