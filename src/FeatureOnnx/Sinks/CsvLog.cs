using System.Text;

namespace FeatureOnnx.Sinks;

/// <summary>
/// An append-only CSV file (RFC 4180 quoting) written as <c>NAME.partial</c> and renamed into place by
/// <see cref="Complete"/>. Used for index.csv (<c>row,path</c>) and errors.csv (<c>path,reason</c>).
/// </summary>
public sealed class CsvLog : IDisposable
{
    private readonly StreamWriter _writer;
    private bool _completed;

    /// <summary>Creates the file with a header line.</summary>
    public CsvLog(string path, params string[] header)
    {
        Path = path;
        _writer = new StreamWriter(path + ".partial", append: false, new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
        Write(header);
    }

    /// <summary>Final path.</summary>
    public string Path { get; }

    /// <summary>Data lines written (header excluded).</summary>
    public long Lines { get; private set; } = -1;

    /// <summary>Appends one record.</summary>
    public void Write(params string[] fields)
    {
        _writer.WriteLine(string.Join(",", fields.Select(Quote)));
        Lines++;
    }

    /// <summary>Quotes a field when it holds a comma, quote or line break.</summary>
    public static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) < 0 ? field : "\"" + field.Replace("\"", "\"\"") + "\"";

    /// <summary>Flushes to disk and renames into place.</summary>
    public void Complete()
    {
        if (_completed) return;
        _writer.Flush();
        ((FileStream)_writer.BaseStream).Flush(flushToDisk: true);
        _writer.Dispose();
        File.Move(Path + ".partial", Path, overwrite: true);
        _completed = true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_completed) _writer.Dispose();
    }
}
