using System.Text;
using FeatureOnnx.Formats;

namespace FeatureOnnx.Tests.Formats;

[Trait("Category", TestCategory.Fast)]
public sealed class NpyWriterTests
{
    [Fact]
    public void Header_is_what_numpy_writes()
    {
        // numpy 1.24: np.save(f, np.zeros((2, 3), np.float32)) writes this 128-byte-aligned header (v1.0, len 118).
        var header = NpyFormat.Header("<f4", [2, 3]);
        Assert.Equal(128, header.Length);
        Assert.Equal(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 118, 0 }, header[..10]);
        var text = Encoding.ASCII.GetString(header, 10, 118);
        Assert.Equal("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", text.TrimEnd());
        Assert.EndsWith(" \n", text);
        Assert.Equal("(5,)", Encoding.ASCII.GetString(NpyFormat.Header("<f4", [5])).Split("'shape': ")[1][..4]);
    }

    [Fact]
    public void Streams_rows_and_publishes_only_when_complete()
    {
        using var tmp = new Fixtures.TempDir();
        var path = tmp.File("x.npy");
        using (var w = new NpyWriter(path, [2, 2]))
        {
            w.Append([1, 2, 3, 4]);
            w.Append([5, 6, 7, 8, 9, 10, 11, 12]);
            Assert.False(File.Exists(path));
            Assert.True(File.Exists(path + ".partial"));
            w.Complete();
        }
        Assert.False(File.Exists(path + ".partial"));
        var (shape, data) = Fixtures.ReadFloatNpy(path);
        Assert.Equal(new long[] { 3, 2, 2 }, shape);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (float)i), data);
    }

    [Fact]
    public void Rejects_partial_rows()
    {
        using var tmp = new Fixtures.TempDir();
        using var w = new NpyWriter(tmp.File("y.npy"), [3]);
        Assert.Throws<ArgumentException>(() => w.Append([1, 2]));
    }

    [Fact]
    public void Csv_fields_are_quoted_when_needed()
    {
        Assert.Equal("plain", CsvLog.Quote("plain"));
        Assert.Equal("\"a,b\"", CsvLog.Quote("a,b"));
        Assert.Equal("\"say \"\"hi\"\"\"", CsvLog.Quote("say \"hi\""));
    }
}
