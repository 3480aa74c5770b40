using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace FeatureOnnx.Formats;

/// <summary>
/// The .npy format (version 1.0): magic, header length, a Python dict literal with dtype, order and shape, padded
/// with spaces to a multiple of 64 bytes, then the raw little-endian data. numpy.load reads what this writes.
/// </summary>
public static partial class NpyFormat
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Bytes reserved for a header written before the row count is known (room for any shape).</summary>
    public const int ReservedHeaderLength = 128;

    /// <summary>Builds a header for <paramref name="dtype"/> (e.g. <c>&lt;f4</c>) and <paramref name="shape"/>, padded to <paramref name="totalLength"/> bytes (0: the smallest multiple of 64).</summary>
    public static byte[] Header(string dtype, IReadOnlyList<long> shape, int totalLength = 0)
    {
        var shapeText = shape.Count == 1
            ? $"({shape[0].ToString(CultureInfo.InvariantCulture)},)"
            : "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")";
        var dict = $"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shapeText}, }}";
        var unpadded = Magic.Length + 2 + 2 + dict.Length + 1;
        var total = totalLength > 0 ? totalLength : (unpadded + 63) / 64 * 64;
        if (total < unpadded) throw new ArgumentException($"npy header needs {unpadded} bytes, only {total} reserved");
        var headerLength = total - Magic.Length - 2 - 2;
        var bytes = new byte[total];
        Magic.CopyTo(bytes, 0);
        bytes[6] = 1; // version 1.0
        bytes[7] = 0;
        bytes[8] = (byte)(headerLength & 0xFF);
        bytes[9] = (byte)(headerLength >> 8);
        var text = dict.PadRight(headerLength - 1) + "\n";
        Encoding.ASCII.GetBytes(text, 0, text.Length, bytes, 10);
        return bytes;
    }

    /// <summary>A parsed header.</summary>
    /// <param name="DType">numpy dtype string, e.g. <c>&lt;f4</c>.</param>
    /// <param name="FortranOrder">True for column-major data.</param>
    /// <param name="Shape">Dimensions.</param>
    /// <param name="DataOffset">Byte offset of the data.</param>
    public sealed record Info(string DType, bool FortranOrder, long[] Shape, long DataOffset)
    {
        /// <summary>Number of elements.</summary>
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>Reads the header of an .npy stream positioned at its start; leaves the stream at the data.</summary>
    /// <exception cref="InvalidDataException">Not an .npy stream.</exception>
    public static Info ReadHeader(Stream stream, string nameForErrors)
    {
        var prefix = new byte[10];
        stream.ReadExactly(prefix);
        if (!prefix.AsSpan(0, 6).SequenceEqual(Magic)) throw new InvalidDataException($"{nameForErrors}: not an .npy file (bad magic).");
        int headerLength, prefixLength;
        if (prefix[6] == 1) { headerLength = prefix[8] | prefix[9] << 8; prefixLength = 10; }
        else
        {
            var extra = new byte[2];
            stream.ReadExactly(extra);
            headerLength = prefix[8] | prefix[9] << 8 | extra[0] << 16 | extra[1] << 24;
            prefixLength = 12;
        }
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var text = Encoding.ASCII.GetString(header);
        var descr = DescrRegex().Match(text);
        var fortran = FortranRegex().Match(text);
        var shape = ShapeRegex().Match(text);
        if (!descr.Success || !fortran.Success || !shape.Success) throw new InvalidDataException($"{nameForErrors}: unreadable .npy header: {text.Trim()}");
        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return new Info(descr.Groups[1].Value, fortran.Groups[1].Value == "True", dims, prefixLength + headerLength);
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrRegex();

    [GeneratedRegex(@"'fortran_order':\s*(True|False)")]
    private static partial Regex FortranRegex();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapeRegex();
}
