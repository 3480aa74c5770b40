using Xunit;
using FeatureOnnx.Formats;
using PcaFixtures = FeatureOnnx.Tests.PostProcessing.Fixtures;

namespace FeatureOnnx.Tests.Formats;

[Trait("Category", TestCategory.Fast)]
public sealed class NpyReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("featureonnx-npy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string dtype, bool fortran, long[] shape, int bytes)
    {
        var path = Path.Combine(_dir, name);
        var header = NpyFormat.Header(dtype, shape);
        if (fortran)
        {
            var dict = System.Text.Encoding.ASCII.GetString(header, 10, header.Length - 10).Replace("'fortran_order': False", "'fortran_order': True ");
            header = [.. header.AsSpan(0, 10), .. System.Text.Encoding.ASCII.GetBytes(dict)];
        }
        File.WriteAllBytes(path, [.. header, .. new byte[bytes]]);
        return path;
    }

    [Fact]
    public void Reads_rows_in_chunks_and_seeks_back()
    {
        var (all, rows, d) = PcaFixtures.Features("features_200x40.npy");
        using var reader = NpyReader.Open(PcaFixtures.Path("features_200x40.npy"));
        Assert.Equal(200, reader.Rows);
        Assert.Equal(40, reader.RowLength);
        var buffer = new float[7 * d + 3]; // not a whole number of rows: only whole rows are read
        var collected = new List<float>();
        int read;
        while ((read = reader.ReadRows(buffer)) > 0) collected.AddRange(buffer.AsSpan(0, read * d).ToArray());
        Assert.Equal(all, collected);
        reader.Seek(199);
        Assert.Equal(1, reader.ReadRows(buffer));
        Assert.Equal(all.AsSpan(199 * d, d).ToArray(), buffer.AsSpan(0, d).ToArray());
        Assert.Equal(rows, (int)reader.Position);
    }

    [Fact]
    public void Wrong_dtype_order_shape_or_length_is_named_with_a_fix()
    {
        var f8 = Write("f8.npy", "<f8", false, [3, 4], 96);
        var e = Assert.Throws<InvalidDataException>(() => NpyReader.Open(f8));
        Assert.Contains(f8, e.Message);
        Assert.Contains("float32", e.Message);

        var fortran = Write("fortran.npy", "<f4", true, [3, 4], 48);
        e = Assert.Throws<InvalidDataException>(() => NpyReader.Open(fortran));
        Assert.Contains("Fortran", e.Message);
        Assert.Contains("ascontiguousarray", e.Message);

        var truncated = Write("short.npy", "<f4", false, [3, 4], 40);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => NpyReader.Open(truncated)).Message);
    }
}
