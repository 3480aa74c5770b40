using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Tests.Preprocessing;

public sealed class ImagePreprocessorTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Warm_up_decodes_its_embedded_jpeg_and_png(bool preferTurboJpeg)
    {
        // The pipeline swallows a decode error in the warm-up (it is only a head start), so a broken embedded image
        // would go unnoticed there: here it must decode, with libjpeg-turbo and with ImageSharp.
        var preprocessor = new ImagePreprocessor(new ModelCatalog().Resolve("resnet18"), preferTurboJpeg: preferTurboJpeg);
        preprocessor.WarmUp();
    }
}
