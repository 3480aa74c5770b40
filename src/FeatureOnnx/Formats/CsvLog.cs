using System.Text;

namespace FeatureOnnx.Formats;

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

    private CsvLog(string path, StreamWriter writer, long lines)
    {
        Path = path;
        _writer = writer;
        Lines = lines;
    }

    /// <summary>
    /// Reopens a log left by an interrupted or killed run (as NAME.partial, or NAME when it was completed on
    /// interrupt), keeps its header and first <paramref name="keepLines"/> records, cuts anything after them and
    /// appends from there. Returns field <paramref name="keyField"/> of every kept record.
    /// </summary>
    /// <exception cref="InvalidDataException">The file holds fewer records than asked to keep.</exception>
    public static CsvLog Resume(string path, long keepLines, int keyField, out List<string> keys)
    {
        var partial = path + ".partial";
        if (!File.Exists(partial))
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"cannot resume: {partial} is missing. Start the run again from scratch (overwriting the folder).", partial);
            File.Move(path, partial);
        }
        keys = new List<string>();
        long offset;
        using (var reader = new StreamReader(partial, new UTF8Encoding(false), false, 1 << 16))
        {
            var parser = new RecordReader(reader);
            if (parser.Next() is null) throw new InvalidDataException($"{partial}: empty; the run cannot be resumed.");
            for (long i = 0; i < keepLines; i++)
            {
                var record = parser.Next() ?? throw new InvalidDataException($"{partial}: holds fewer than the {keepLines} records the progress log committed; the run cannot be resumed.");
                keys.Add(record[keyField]);
            }
            offset = parser.Offset;
        }
        var stream = new FileStream(partial, FileMode.Open, FileAccess.Write, FileShare.Read);
        stream.SetLength(offset);
        stream.Position = offset;
        var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
        return new CsvLog(path, writer, keepLines);
    }

    /// <summary>Reads the data records of a complete log (header skipped), streaming.</summary>
    public static RecordStream Read(string path) => new(path);

    /// <summary>
    /// The data records of a CSV file a person may have written (header skipped): CRLF line ends are taken as LF and a
    /// last line without its line end is kept, where <see cref="Read"/> treats it as a record cut short.
    /// </summary>
    public static List<List<string>> ReadWritten(string path)
    {
        var text = File.ReadAllText(path, new UTF8Encoding(false)).Replace("\r\n", "\n");
        if (text.Length > 0 && text[^1] != '\n') text += "\n";
        using var reader = new StreamReader(new MemoryStream(new UTF8Encoding(false).GetBytes(text)));
        var parser = new RecordReader(reader);
        var records = new List<List<string>>();
        if (parser.Next() is null) return records;
        while (parser.Next() is { } record) records.Add(record);
        return records;
    }

    /// <summary>The records of a CSV file, header skipped; dispose to close the file.</summary>
    public sealed class RecordStream : IEnumerable<List<string>>, IDisposable
    {
        private readonly StreamReader _reader;

        internal RecordStream(string path) => _reader = new StreamReader(path, new UTF8Encoding(false), false, 1 << 16);

        /// <inheritdoc />
        public IEnumerator<List<string>> GetEnumerator()
        {
            var parser = new RecordReader(_reader);
            if (parser.Next() is null) yield break;
            while (parser.Next() is { } record) yield return record;
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        /// <inheritdoc />
        public void Dispose() => _reader.Dispose();
    }

    /// <summary>Pushes buffered records to the operating system (they survive the process being killed).</summary>
    public void Flush() => _writer.Flush();

    /// <summary>Reads RFC 4180 records one by one, tracking the byte offset after each (UTF-8, LF line ends).</summary>
    private sealed class RecordReader(StreamReader reader)
    {
        public long Offset { get; private set; }

        public List<string>? Next()
        {
            var fields = new List<string>();
            var field = new StringBuilder();
            var quoted = false;
            while (true)
            {
                var c = reader.Read();
                if (c < 0)
                {
                    // A record without its line end was being written when the process died: not committed.
                    return null;
                }
                if (char.IsHighSurrogate((char)c))
                {
                    field.Append((char)c).Append((char)reader.Read());
                    Offset += 4;
                    continue;
                }
                Offset += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
                if (quoted)
                {
                    if (c == '"')
                    {
                        if (reader.Peek() == '"') { reader.Read(); Offset++; field.Append('"'); }
                        else quoted = false;
                    }
                    else field.Append((char)c);
                    continue;
                }
                switch (c)
                {
                    case '"': quoted = true; break;
                    case ',': fields.Add(field.ToString()); field.Clear(); break;
                    case '\n':
                        fields.Add(field.ToString());
                        return fields;
                    default: field.Append((char)c); break;
                }
            }
        }
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
