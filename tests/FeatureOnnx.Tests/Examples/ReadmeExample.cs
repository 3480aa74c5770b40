using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Examples;

public static class ReadmeExample
{
    // A folder of images -> OUT/pooled.npy (one 512-d ResNet18 vector per image), index.csv, errors.csv, run.json.
    public static Task<ExtractionResult> ExtractFolder(string images, string output) =>
        new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [images], OutputDirectory = output });

    // One encoded image in memory -> its 512-d vector, with the model's own preprocessing.
    public static float[] Embed(byte[] encodedImage)
    {
        var catalog = new ModelCatalog();                   // the built-in models, copied next to the app
        var manifest = catalog.Resolve("resnet18");
        using var session = new FeatureSession(PreparedModel.Build(manifest, ["pooled"], catalog));
        var batch = new float[session.SlotLength];          // room for one image
        new ImagePreprocessor(manifest).Preprocess(encodedImage, batch);
        using var outputs = session.Run(batch, count: 1);
        return outputs.Values("pooled").ToArray();
    }
}
