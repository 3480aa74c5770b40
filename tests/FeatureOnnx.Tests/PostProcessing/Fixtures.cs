using Xunit;
using FeatureOnnx.Formats;

namespace FeatureOnnx.Tests.PostProcessing;

/// <summary>The scikit-learn / numpy references made by export-scripts/make_pca_fixtures.py.</summary>
internal static class Fixtures
{
    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "fixtures", "pca", name);

    public static Dictionary<string, NpyArray> Npz(string name) => NpzArchive.Read(Path(name));

    public static (float[] Data, int Rows, int Dimension) Features(string name)
    {
        using var reader = NpyReader.Open(Path(name));
        return (reader.ReadAll(), (int)reader.Rows, (int)reader.RowLength);
    }

    /// <summary>max |actual - expected| / scale, where scale is the largest |expected| in the same row of <paramref name="width"/> values (the whole array when width is 0).</summary>
    public static double RelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, int width = 0)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = 0.0;
        var w = width > 0 ? width : expected.Length;
        for (var start = 0; start < expected.Length; start += w)
        {
            var scale = 0.0;
            for (var i = start; i < start + w; i++) scale = Math.Max(scale, Math.Abs(expected[i]));
            for (var i = start; i < start + w; i++) worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / scale);
        }
        return worst;
    }

    /// <summary>As <see cref="RelativeError"/> per column of a rows x width matrix (scale: the column's largest |expected|).</summary>
    public static double ColumnRelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, int width)
    {
        Assert.Equal(expected.Length, actual.Length);
        var rows = expected.Length / width;
        var worst = 0.0;
        for (var c = 0; c < width; c++)
        {
            var scale = 0.0;
            for (var r = 0; r < rows; r++) scale = Math.Max(scale, Math.Abs(expected[r * width + c]));
            for (var r = 0; r < rows; r++) worst = Math.Max(worst, Math.Abs(actual[r * width + c] - expected[r * width + c]) / scale);
        }
        return worst;
    }

    public static double[] ToDoubles(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (var i = 0; i < values.Length; i++) result[i] = values[i];
        return result;
    }
}
