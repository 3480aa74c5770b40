using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

namespace FeatureOnnx.Formats;

/// <summary>One array of an .npz archive: numpy dtype, shape and raw little-endian C-order bytes.</summary>
/// <param name="DType">numpy dtype string: <c>&lt;f8</c>, <c>&lt;f4</c>, <c>&lt;i8</c>, <c>|b1</c> or <c>&lt;U</c>n.</param>
/// <param name="Shape">Dimensions; empty for a scalar (0-d array).</param>
/// <param name="Data">The raw data.</param>
public sealed record NpyArray(string DType, long[] Shape, byte[] Data)
{
    /// <summary>A float64 array.</summary>
    public static NpyArray Of(ReadOnlySpan<double> values, params long[] shape) => new("<f8", shape, MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>A float64 scalar.</summary>
    public static NpyArray Of(double value) => Of([value]);

    /// <summary>An int64 scalar.</summary>
    public static NpyArray Of(long value) => new("<i8", [], BitConverter.GetBytes(value));

    /// <summary>A bool scalar.</summary>
    public static NpyArray Of(bool value) => new("|b1", [], [value ? (byte)1 : (byte)0]);

    /// <summary>A unicode string scalar (numpy <c>&lt;U</c>n, UTF-32).</summary>
    public static NpyArray Of(string value)
    {
        var utf32 = Encoding.UTF32.GetBytes(value);
        return new NpyArray($"<U{Math.Max(1, utf32.Length / 4)}", [], utf32.Length == 0 ? new byte[4] : utf32);
    }

    /// <summary>The values as float64 (from <c>&lt;f8</c> or <c>&lt;f4</c>).</summary>
    public double[] ToDoubles() => DType switch
    {
        "<f8" => MemoryMarshal.Cast<byte, double>(Data).ToArray(),
        "<f4" => MemoryMarshal.Cast<byte, float>(Data).ToArray().Select(f => (double)f).ToArray(),
        _ => throw new InvalidDataException($"expected a float array, found dtype {DType}"),
    };

    /// <summary>The scalar as an int64 (from any integer or float dtype numpy writes for a count).</summary>
    public long ToInt64() => DType switch
    {
        "<i8" => BitConverter.ToInt64(Data),
        "<i4" => BitConverter.ToInt32(Data),
        "<f8" => checked((long)BitConverter.ToDouble(Data)),
        _ => throw new InvalidDataException($"expected an integer, found dtype {DType}"),
    };

    /// <summary>The scalar as a bool.</summary>
    public bool ToBoolean() => DType switch
    {
        "|b1" => Data[0] != 0,
        "<i8" or "<i4" or "|i1" or "|u1" => Data.Any(b => b != 0),
        _ => throw new InvalidDataException($"expected a bool, found dtype {DType}"),
    };

    /// <summary>The scalar as a string (numpy <c>&lt;U</c>n).</summary>
    public override string ToString() => DType.StartsWith("<U", StringComparison.Ordinal)
        ? Encoding.UTF32.GetString(Data).TrimEnd('\0')
        : $"{DType} [{string.Join(",", Shape)}]";
}

/// <summary>
/// The .npz format: a zip archive with one <c>NAME.npy</c> per array, as <c>numpy.savez</c> writes it and
/// <c>numpy.load</c> reads it (no pickles needed). Writes go to <c>PATH.partial</c> and are renamed into place.
/// </summary>
public static class NpzArchive
{
    /// <summary>Writes <paramref name="arrays"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, NpyArray>> arrays)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        var partial = path + ".partial";
        using (var file = new FileStream(partial, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            using (var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true))
            {
                foreach (var (name, array) in arrays)
                {
                    var entry = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression);
                    using var s = entry.Open();
                    s.Write(NpyFormat.Header(array.DType, array.Shape));
                    s.Write(array.Data);
                }
            }
            file.Flush(flushToDisk: true);
        }
        File.Move(partial, path, overwrite: true);
    }

    /// <summary>Reads every array of <paramref name="path"/>, keyed by name without <c>.npy</c>.</summary>
    /// <exception cref="InvalidDataException">Not a zip of .npy files, or a Fortran-order or big-endian array.</exception>
    public static Dictionary<string, NpyArray> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        var result = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal)))
            {
                using var raw = entry.Open();
                using var s = new MemoryStream();
                raw.CopyTo(s);
                s.Position = 0;
                var name = entry.FullName[..^4];
                var info = NpyFormat.ReadHeader(s, $"{path}:{entry.FullName}");
                if (info.FortranOrder && info.Shape.Length > 2) throw new InvalidDataException($"{path}:{entry.FullName}: Fortran order with {info.Shape.Length} dimensions is not supported; save it with np.ascontiguousarray.");
                if (info.DType.StartsWith('>')) throw new InvalidDataException($"{path}:{entry.FullName}: big-endian dtype {info.DType}; save it little-endian.");
                var data = new byte[s.Length - s.Position];
                s.ReadExactly(data);
                if (info.FortranOrder && info.Shape.Length == 2) data = ToRowMajor(data, info.Shape[0], info.Shape[1], $"{path}:{entry.FullName}");
                result[name] = new NpyArray(info.DType.Replace("=", "<", StringComparison.Ordinal), info.Shape, data);
            }
        }
        catch (InvalidDataException e) when (e.Message.Contains("Central Directory", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("zip", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"{path}: not an .npz (zip) archive: {e.Message}", e);
        }
        return result;
    }

    /// <summary>Transposes a column-major rows x columns matrix (numpy.savez keeps sklearn's F-ordered arrays so).</summary>
    private static byte[] ToRowMajor(byte[] data, long rows, long columns, string name)
    {
        var count = rows * columns;
        if (count == 0) return data;
        if (data.Length % count != 0) throw new InvalidDataException($"{name}: {data.Length} bytes do not hold [{rows},{columns}]");
        var size = (int)(data.Length / count);
        var result = new byte[data.Length];
        for (long r = 0; r < rows; r++)
        for (long c = 0; c < columns; c++)
            Buffer.BlockCopy(data, (int)((c * rows + r) * size), result, (int)((r * columns + c) * size), size);
        return result;
    }
}
