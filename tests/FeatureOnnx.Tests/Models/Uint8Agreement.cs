using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Models;

/// <summary>Runs photos through a model twice, float32 input normalised in C# and uint8 crops normalised in the graph, and measures the agreement.</summary>
internal static class Uint8Agreement
{
    /// <summary>Every photo of fixtures/photos.</summary>
    public static string[] Photos() =>
        Directory.GetFiles(Fixtures.PathOf("photos")).Where(p => !p.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();

    /// <param name="MinCosine">Smallest per-row cosine over every output.</param>
    /// <param name="MaxRelativeDiff">Largest max |uint8 - float| / max |float| over the outputs.</param>
    /// <param name="BitIdentical">Every value equal.</param>
    /// <param name="Rows">Images compared.</param>
    public sealed record Result(double MinCosine, double MaxRelativeDiff, bool BitIdentical, int Rows);

    public static Result Compare(ModelManifest manifest, ModelCatalog? catalog, string[] layers, IReadOnlyList<string> photos, int batch = 8)
    {
        var pre = new ImagePreprocessor(manifest);
        using var floatSession = new FeatureSession(PreparedModel.Build(manifest, layers, catalog));
        using var uint8Session = new FeatureSession(PreparedModel.Build(manifest, layers, catalog, new PrepareOptions { Uint8Input = true }));
        Assert.Equal(pre.CropLength, uint8Session.SlotLength);
        double minCos = 1, maxRel = 0;
        var identical = true;
        foreach (var chunk in photos.Chunk(batch))
        {
            var floats = new float[chunk.Length * pre.SlotLength];
            var crops = new byte[chunk.Length * pre.CropLength];
            for (var i = 0; i < chunk.Length; i++)
            {
                var bytes = File.ReadAllBytes(chunk[i]);
                pre.Preprocess(bytes, floats.AsSpan(i * pre.SlotLength, pre.SlotLength));
                pre.Crop(bytes, crops.AsSpan(i * pre.CropLength, pre.CropLength));
            }
            using var expected = floatSession.Run(floats, chunk.Length);
            using var actual = uint8Session.RunBound(crops, chunk.Length);
            foreach (var name in floatSession.OutputNames)
            {
                Assert.Equal(expected.Shape(name), actual.Shape(name));
                var e = expected.Values(name);
                var a = actual.Values(name);
                var row = e.Length / chunk.Length;
                for (var r = 0; r < chunk.Length; r++)
                    minCos = Math.Min(minCos, Fixtures.Cosine(a.Slice(r * row, row), e.Slice(r * row, row)));
                double maxDiff = 0, maxValue = 0;
                for (var i = 0; i < e.Length; i++)
                {
                    maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - e[i]));
                    maxValue = Math.Max(maxValue, Math.Abs(e[i]));
                    identical &= a[i] == e[i];
                }
                maxRel = Math.Max(maxRel, maxDiff / maxValue);
            }
        }
        return new Result(minCos, maxRel, identical, photos.Count);
    }
}
