using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace FeatureOnnx.Sources;

/// <summary>
/// File names are bytes on Linux, not always valid UTF-8 (a Latin-1 <c>caf\xe9.jpg</c> copied from an old disk).
/// .NET decodes them as UTF-8 and replaces what is not with U+FFFD, after which the file cannot be opened again.
/// Paths read from folders or list files therefore keep each byte that is not UTF-8 as a lone surrogate
/// U+DC80..U+DCFF (Python's <c>surrogateescape</c>, PEP 383), which never stands for a valid name and turns back into
/// the same byte when the file is opened (<see cref="InputFile"/>). index.csv and errors.csv, which are UTF-8,
/// get <see cref="Escaped"/>: each such byte as <c>\xNN</c>, what Python's
/// <c>name_bytes.decode("utf-8", "backslashreplace")</c> gives.
/// </summary>
public static class FileNameBytes
{
    /// <summary>Decodes a name's bytes: UTF-8 where valid, each other byte as U+DC00 + byte.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(bytes.Length);
        Span<char> chars = stackalloc char[256];
        while (bytes.Length > 0)
        {
            var status = Utf8.ToUtf16(bytes, chars, out var read, out var written, replaceInvalidSequences: false);
            text.Append(chars[..written]);
            bytes = bytes[read..];
            if (status == OperationStatus.InvalidData || status == OperationStatus.NeedMoreData)
            {
                text.Append((char)(0xDC00 + bytes[0]));
                bytes = bytes[1..];
            }
        }
        return text.ToString();
    }

    /// <summary>The bytes <paramref name="path"/> stands for, NUL-terminated (for libc).</summary>
    public static byte[] Encode(string path)
    {
        var bytes = new List<byte>(path.Length + 8);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < path.Length; i++)
        {
            var c = path[i];
            if (IsEscapedByte(path, i))
            {
                bytes.Add((byte)(c - 0xDC00));
                continue;
            }
            var isPair = char.IsHighSurrogate(c) && i + 1 < path.Length && char.IsLowSurrogate(path[i + 1]);
            var rune = isPair ? new Rune(c, path[++i]) : Rune.IsValid(c) ? new Rune(c) : Rune.ReplacementChar;
            var n = rune.EncodeToUtf8(utf8);
            for (var k = 0; k < n; k++) bytes.Add(utf8[k]);
        }
        bytes.Add(0);
        return [.. bytes];
    }

    /// <summary>Whether <paramref name="path"/> holds bytes that are not UTF-8.</summary>
    public static bool HasEscapedBytes(string path)
    {
        for (var i = 0; i < path.Length; i++)
            if (IsEscapedByte(path, i)) return true;
        return false;
    }

    /// <summary>The path as written to index.csv and errors.csv: bytes that are not UTF-8 as <c>\xNN</c>.</summary>
    public static string Escaped(string path)
    {
        if (!HasEscapedBytes(path)) return path;
        var text = new StringBuilder(path.Length + 16);
        for (var i = 0; i < path.Length; i++)
        {
            if (IsEscapedByte(path, i)) text.Append("\\x").Append((path[i] - 0xDC00).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            else text.Append(path[i]);
        }
        return text.ToString();
    }

    // A lone low surrogate in 0xDC80..0xDCFF (not the second half of a pair) is an escaped byte.
    private static bool IsEscapedByte(string s, int i) =>
        s[i] is >= '\uDC80' and <= '\uDCFF' && (i == 0 || !char.IsHighSurrogate(s[i - 1]));
}
