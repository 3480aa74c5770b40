using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Models;

/// <summary>Runs the test photos through a model at two precisions (or conversion rules) and measures how the features agree.</summary>
internal static class PrecisionAgreement
{
    /// <param name="MinCosine">Smallest per-image cosine.</param>
    /// <param name="MedianCosine">Median per-image cosine.</param>
    /// <param name="MaxRelativeDiff">max |b - a| / max |a| over all values.</param>
    /// <param name="Rows">Images compared.</param>
    public sealed record Result(double MinCosine, double MedianCosine, double MaxRelativeDiff, int Rows)
    {
        public override string ToString() =>
            $"{Rows} photos: min cosine {MinCosine:0.0000000}, median {MedianCosine:0.0000000}, max |diff| {MaxRelativeDiff:g3} of the largest value";
    }

    /// <summary>Features of every photo for one output, row after row.</summary>
    public static float[] Features(ModelManifest manifest, ModelCatalog? catalog, string output, PrepareOptions options, IReadOnlyList<string> photos, int batch = 8)
    {
        using var session = new FeatureSession(PreparedModel.Build(manifest, [output], catalog, options));
        var pre = new ImagePreprocessor(manifest);
        var rows = new List<float>();
        foreach (var chunk in photos.Chunk(batch))
        {
            var floats = new float[chunk.Length * pre.SlotLength];
            for (var i = 0; i < chunk.Length; i++)
                pre.Preprocess(File.ReadAllBytes(chunk[i]), floats.AsSpan(i * pre.SlotLength, pre.SlotLength));
            using var outputs = session.Run(floats, chunk.Length);
            rows.AddRange(outputs.Values(output).ToArray());
        }
        return rows.ToArray();
    }

    public static Result Compare(float[] reference, float[] other, int rows)
    {
        Assert.Equal(reference.Length, other.Length);
        var width = reference.Length / rows;
        var cosines = Enumerable.Range(0, rows)
            .Select(r => Fixtures.Cosine(other.AsSpan(r * width, width), reference.AsSpan(r * width, width))).Order().ToArray();
        double maxDiff = 0, maxValue = 0;
        for (var i = 0; i < reference.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs(other[i] - reference[i]));
            maxValue = Math.Max(maxValue, Math.Abs(reference[i]));
        }
        return new Result(cosines[0], cosines[rows / 2], maxDiff / maxValue, rows);
    }

    public static readonly PrepareOptions Fp32 = new() { Precision = ModelPrecision.Fp32 };
    public static readonly PrepareOptions Twin = new() { Precision = ModelPrecision.Fp16, Float16 = new Float16Options { Form = Float16Form.Twin } };
    public static readonly PrepareOptions AllFloat16Twin = new()
    {
        Precision = ModelPrecision.Fp16,
        Float16 = new Float16Options { Form = Float16Form.Twin, Float32Ops = new HashSet<string>() },
    };
    public static readonly PrepareOptions Fp16 = new() { Precision = ModelPrecision.Fp16 };
}
