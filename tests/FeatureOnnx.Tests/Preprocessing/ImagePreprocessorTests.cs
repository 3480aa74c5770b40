using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Preprocessing;

[Trait("Category", TestCategory.Fast)]
public sealed class ImagePreprocessorTests
{
    // PIL 9.4: Image.open(...).convert("RGB") of the embedded 6x4 PNG, row-major RGB.
    private static readonly byte[] PilPng =
    [
        16, 24, 3, 54, 24, 9, 95, 24, 15, 135, 24, 22, 176, 24, 28, 214, 24, 34,
        16, 81, 9, 54, 81, 29, 95, 81, 52, 135, 81, 73, 176, 81, 95, 214, 81, 118,
        16, 144, 15, 54, 144, 52, 95, 144, 91, 135, 144, 129, 176, 144, 172, 214, 144, 197,
        16, 201, 21, 54, 201, 73, 95, 201, 128, 135, 201, 186, 176, 201, 188, 214, 201, 82,
    ];

    // PIL 9.4 (libjpeg-turbo 2.1.5) on the embedded 24x16 JPEG: sum of all bytes and per-channel means.
    private const long PilJpegSum = 116109;
    private static readonly double[] PilJpegMeans = [113.859375, 112.390625, 76.1171875];

    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void Warm_up_decodes_its_embedded_jpeg_and_png(bool preferTurboJpeg)
    {
        // The pipeline swallows a decode error in the warm-up (it is only a head start), so a broken embedded image
        // would go unnoticed there: here it must decode, with libjpeg-turbo and with ImageSharp, to what PIL decodes.
        if (preferTurboJpeg) Fixtures.RequireTurboJpeg();
        var preprocessor = new ImagePreprocessor(new ModelCatalog().Resolve("resnet18"), preferTurboJpeg: preferTurboJpeg);
        preprocessor.WarmUp();

        Assert.Equal(2, ImagePreprocessor.WarmUpImages.Length);
        var jpeg = preprocessor.Decoder.Decode(Convert.FromBase64String(ImagePreprocessor.WarmUpImages[0]));
        var png = preprocessor.Decoder.Decode(Convert.FromBase64String(ImagePreprocessor.WarmUpImages[1]));
        Assert.Equal((24, 16), (jpeg.Width, jpeg.Height));
        Assert.Equal(PilPng, png.Pixels);
        if (preferTurboJpeg)
        {
            Assert.Equal("libjpeg-turbo", preprocessor.Decoder.JpegDecoderName);
            Assert.Equal(PilJpegSum, jpeg.Pixels.Sum(b => (long)b)); // the same libjpeg-turbo as PIL: the same bytes
        }
        else
        {
            for (var c = 0; c < 3; c++)
            {
                var mean = Enumerable.Range(0, 24 * 16).Average(i => jpeg.Pixels[i * 3 + c]);
                // ImageSharp's IDCT and chroma upsampling differ from libjpeg-turbo's by a level or two per pixel.
                Assert.InRange(mean, PilJpegMeans[c] - 1.5, PilJpegMeans[c] + 1.5);
            }
        }
    }
}
