using System.Runtime.InteropServices;

namespace FeatureOnnx.Formats;

/// <summary>
/// Streams the rows of a float32, C-order .npy file (as <see cref="NpyWriter"/> and <c>numpy.save</c> write them) in
/// chunks, so a file larger than memory can be read with a fixed buffer. A row is everything after the first
/// dimension: a file of shape [N,C,H,W] has N rows of C*H*W floats.
/// </summary>
public sealed class NpyReader : IDisposable
{
    private readonly FileStream _stream;

    private NpyReader(string path, FileStream stream, NpyFormat.Info info)
    {
        Path = path;
        _stream = stream;
        Rows = info.Shape[0];
        RowShape = info.Shape[1..];
        RowLength = RowShape.Aggregate(1L, (a, b) => a * b);
        DataOffset = info.DataOffset;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Rows in the file (the first dimension).</summary>
    public long Rows { get; }

    /// <summary>Shape of one row (every dimension after the first).</summary>
    public IReadOnlyList<long> RowShape { get; }

    /// <summary>Floats per row.</summary>
    public long RowLength { get; }

    /// <summary>Rows read so far (the position of the next <see cref="ReadRows"/>).</summary>
    public long Position { get; private set; }

    /// <summary>Byte offset of the first row.</summary>
    private long DataOffset { get; }

    /// <summary>Opens <paramref name="path"/> and checks that it holds float32 rows in C order.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not an .npy file, not little-endian float32, Fortran order, no rows dimension, or shorter than its header says.</exception>
    public static NpyReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        try
        {
            var info = NpyFormat.ReadHeader(stream, path);
            if (info.DType != "<f4")
                throw new InvalidDataException($"{path}: dtype {info.DType}, expected little-endian float32 (<f4). Convert it in numpy: np.save(path, np.ascontiguousarray(a, dtype='<f4')).");
            if (info.FortranOrder)
                throw new InvalidDataException($"{path}: Fortran (column-major) order; rows must be contiguous. Convert it in numpy: np.save(path, np.ascontiguousarray(a)).");
            if (info.Shape.Length == 0)
                throw new InvalidDataException($"{path}: a scalar; expected one row per sample, shape [N, ...].");
            var bytes = checked(info.Count * sizeof(float));
            if (stream.Length < info.DataOffset + bytes)
                throw new InvalidDataException($"{path}: truncated: the header says [{string.Join(",", info.Shape)}] ({bytes} bytes of data) but the file has {stream.Length - info.DataOffset}. Was it copied while still being written?");
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
            return new NpyReader(path, stream, info);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads the header of <paramref name="path"/> only: rows and row shape, with the same checks as <see cref="Open"/>.</summary>
    public static (long Rows, IReadOnlyList<long> RowShape) Peek(string path)
    {
        using var reader = Open(path);
        return (reader.Rows, reader.RowShape);
    }

    /// <summary>
    /// Reads up to <c>destination.Length / RowLength</c> whole rows into <paramref name="destination"/>; returns the
    /// number of rows read, 0 at the end of the file.
    /// </summary>
    public int ReadRows(Span<float> destination)
    {
        var wanted = (int)Math.Min(destination.Length / Math.Max(1, RowLength), Rows - Position);
        if (wanted <= 0) return 0;
        var bytes = MemoryMarshal.AsBytes(destination[..checked((int)(wanted * RowLength))]);
        _stream.ReadExactly(bytes);
        Position += wanted;
        return wanted;
    }

    /// <summary>Moves to row <paramref name="row"/> (0: the start, for a second pass).</summary>
    public void Seek(long row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(row, Rows);
        _stream.Position = DataOffset + row * RowLength * sizeof(float);
        Position = row;
    }

    /// <summary>Reads every remaining row into one array (for files known to be small).</summary>
    public float[] ReadAll()
    {
        var data = new float[checked((Rows - Position) * RowLength)];
        var read = ReadRows(data);
        if (read * RowLength != data.Length) throw new InvalidDataException($"{Path}: ended early.");
        return data;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _stream.Dispose();
}
