using System.Runtime.InteropServices;

namespace FeatureOnnx.Formats;

/// <summary>
/// Streams float32 rows to an .npy file without holding them in memory. Rows go to <c>NAME.npy.partial</c> behind a
/// header reserved at a fixed size; <see cref="Complete"/> writes the final row count into the header, flushes to
/// disk and renames the file to <c>NAME.npy</c>. A crash therefore never leaves a file that looks complete.
/// </summary>
public sealed class NpyWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly long[] _rowShape;
    private bool _completed;

    /// <summary>Creates <c><paramref name="path"/>.partial</c> for rows of shape <paramref name="rowShape"/>.</summary>
    public NpyWriter(string path, IReadOnlyList<long> rowShape)
    {
        Path = path;
        PartialPath = path + ".partial";
        _rowShape = rowShape.ToArray();
        RowLength = _rowShape.Aggregate(1L, (a, b) => a * b);
        _stream = new FileStream(PartialPath, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 20);
        _stream.Write(NpyFormat.Header("<f4", [0, .. _rowShape], NpyFormat.ReservedHeaderLength));
    }

    private NpyWriter(string path, FileStream stream, long[] rowShape, long rows)
    {
        Path = path;
        PartialPath = path + ".partial";
        _stream = stream;
        _rowShape = rowShape;
        RowLength = _rowShape.Aggregate(1L, (a, b) => a * b);
        Rows = rows;
    }

    /// <summary>
    /// Reopens a file left by an interrupted or killed run (NAME.partial, or NAME when it was completed on
    /// interrupt), keeps its first <paramref name="rows"/> rows, cuts anything after them and appends from there.
    /// </summary>
    /// <exception cref="InvalidDataException">Not one of our float32 files, or fewer rows than asked to keep.</exception>
    public static NpyWriter Resume(string path, long rows)
    {
        var partial = path + ".partial";
        if (!File.Exists(partial))
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"cannot resume: {partial} is missing. Start the run again from scratch (overwriting the folder).", partial);
            File.Move(path, partial);
        }
        var stream = new FileStream(partial, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 20);
        try
        {
            var info = NpyFormat.ReadHeader(stream, partial);
            if (info.DType != "<f4" || info.DataOffset != NpyFormat.ReservedHeaderLength)
                throw new InvalidDataException($"{partial}: not a FeatureOnnx float32 output; the run cannot be resumed.");
            var rowShape = info.Shape[1..];
            var rowBytes = rowShape.Aggregate(1L, (a, b) => a * b) * sizeof(float);
            var needed = info.DataOffset + rows * rowBytes;
            if (stream.Length < needed)
                throw new InvalidDataException($"{partial}: holds fewer than the {rows} rows the progress log committed; the run cannot be resumed.");
            stream.SetLength(needed);
            stream.Position = needed;
            return new NpyWriter(path, stream, rowShape, rows);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Pushes written rows to the operating system (they survive the process being killed).</summary>
    public void Flush() => _stream.Flush();

    /// <summary>Final path.</summary>
    public string Path { get; }

    /// <summary>Path while writing.</summary>
    public string PartialPath { get; }

    /// <summary>Shape of one row.</summary>
    public IReadOnlyList<long> RowShape => _rowShape;

    /// <summary>Floats per row.</summary>
    public long RowLength { get; }

    /// <summary>Rows written so far.</summary>
    public long Rows { get; private set; }

    /// <summary>Appends whole rows.</summary>
    public void Append(ReadOnlySpan<float> rows)
    {
        if (_completed) throw new InvalidOperationException($"{Path} is already complete");
        if (rows.Length % RowLength != 0) throw new ArgumentException($"{rows.Length} floats is not a whole number of rows of {RowLength}");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        _stream.Write(MemoryMarshal.AsBytes(rows));
        Rows += rows.Length / RowLength;
    }

    /// <summary>Writes the final header, syncs to disk and renames into place.</summary>
    public void Complete()
    {
        if (_completed) return;
        _stream.Flush();
        _stream.Position = 0;
        _stream.Write(NpyFormat.Header("<f4", [Rows, .. _rowShape], NpyFormat.ReservedHeaderLength));
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        File.Move(PartialPath, Path, overwrite: true);
        _completed = true;
    }

    /// <summary>Closes the file; an incomplete one stays as <c>.partial</c>.</summary>
    public void Dispose()
    {
        if (!_completed) _stream.Dispose();
    }
}
