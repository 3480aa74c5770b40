using System.Globalization;
using System.Text;

namespace FeatureOnnx.Sources;

/// <summary>
/// WebDataset-style tar shards: lists the image members of a .tar by reading its 512-byte headers in one sequential
/// pass (the data is skipped, never unpacked), so that decode workers can read each member's bytes in place.
/// Keys are <c>SHARD.tar/member/name.jpg</c> (bytes of a name that are not UTF-8 as <c>\xNN</c>, <see cref="FileNameBytes"/>).
/// Members with an absolute path or a <c>..</c> component are reported, never read; members larger than the file size
/// limit are refused from the size in their header; nothing is ever written to disk. Members that are not images
/// (a WebDataset sample's .cls or .json) are counted, not listed. Handles ustar prefixes, GNU long names and pax
/// <c>path</c> records.
/// </summary>
public static class TarShardSource
{
    private const int Block = 512;

    /// <summary>Whether a path names a tar shard.</summary>
    public static bool IsTar(string path) => path.EndsWith(".tar", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Lists the members of <paramref name="tarPath"/>; <paramref name="key"/> is the shard's name as the user gave it;
    /// members above <paramref name="maxFileBytes"/> are refused.
    /// </summary>
    public static void Enumerate(string tarPath, string key, List<InputItem> items, List<InputProblem> problems, ref int skipped, long maxFileBytes = InputFile.DefaultMaxFileBytes)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(InputFile.OpenRegular(tarPath, out _), FileAccess.Read, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add(new InputProblem(key, $"unreadable tar shard: {e.Message}"));
            return;
        }
        using (stream)
        {
            var header = new byte[Block];
            string? longName = null;
            string? paxPath = null;
            var found = new List<InputItem>();
            while (true)
            {
                var headerOffset = stream.Position;
                if (ReadBlock(stream, header) < Block)
                {
                    problems.Add(new InputProblem(key, $"truncated tar shard: ends inside a header at byte {headerOffset}; members listed before it are kept"));
                    break;
                }
                if (header.All(b => b == 0)) break; // end-of-archive marker
                if (!ChecksumOk(header))
                {
                    problems.Add(new InputProblem(key, $"corrupt tar header at byte {headerOffset}; members listed before it are kept"));
                    break;
                }
                var size = ParseOctal(header.AsSpan(124, 12));
                var type = (char)header[156];
                var dataOffset = stream.Position;
                var padded = (size + Block - 1) / Block * Block;
                if (dataOffset + size > stream.Length)
                {
                    problems.Add(new InputProblem($"{key}/{Name(header)}", "truncated tar member: the shard ends inside its data"));
                    break;
                }
                if (type is 'L' or 'x')
                {
                    var data = new byte[size];
                    stream.ReadExactly(data);
                    stream.Position = dataOffset + padded;
                    if (type == 'L') longName = Text(data.AsSpan()).TrimEnd('\0');
                    else paxPath = PaxPath(data);
                    continue;
                }
                var name = paxPath ?? longName ?? Name(header);
                longName = paxPath = null;
                stream.Position = dataOffset + padded;
                if (type is not ('0' or '\0' or '7')) continue; // folders, links, devices: not images
                if (!IsSafe(name))
                {
                    problems.Add(new InputProblem($"{key}/{name}", "unsafe tar member path (absolute or with '..'): skipped, never read"));
                    continue;
                }
                if (!FolderSource.ImageExtensions.Contains(Path.GetExtension(name))) { skipped++; continue; }
                if (InputFile.SizeRefusal(size, maxFileBytes, "tar member") is { } tooLarge)
                {
                    problems.Add(new InputProblem($"{key}/{name}", tooLarge));
                    continue;
                }
                found.Add(new InputItem($"{key}/{name}", Path.GetFullPath(tarPath), dataOffset, size));
            }
            items.AddRange(found);
        }
    }

    private static int ReadBlock(Stream s, byte[] buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = s.Read(buffer, total, buffer.Length - total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static string Name(byte[] h)
    {
        var name = CString(h.AsSpan(0, 100));
        var magic = Encoding.ASCII.GetString(h, 257, 5);
        var prefix = magic == "ustar" ? CString(h.AsSpan(345, 155)) : "";
        return prefix.Length > 0 ? prefix + "/" + name : name;
    }

    private static string CString(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Text(end < 0 ? field : field[..end]);
    }

    // Member names are bytes: what is not UTF-8 is kept as \xNN, as for file names.
    private static string Text(ReadOnlySpan<byte> bytes) => FileNameBytes.Escaped(FileNameBytes.Decode(bytes));

    private static long ParseOctal(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0) // GNU base-256 for sizes >= 8 GiB
        {
            long v = field[0] & 0x7F;
            for (var i = 1; i < field.Length; i++) v = (v << 8) | field[i];
            return v;
        }
        var text = Encoding.ASCII.GetString(field).Trim('\0', ' ');
        return text.Length == 0 ? 0 : Convert.ToInt64(text, 8);
    }

    private static bool ChecksumOk(byte[] h)
    {
        long sum = 0;
        for (var i = 0; i < Block; i++) sum += i is >= 148 and < 156 ? 32 : h[i];
        var text = Encoding.ASCII.GetString(h, 148, 8).Trim('\0', ' ');
        return text.Length > 0 && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _) && Convert.ToInt64(text, 8) == sum;
    }

    private static string? PaxPath(byte[] data)
    {
        // Records: "LEN key=value\n"
        var text = Text(data);
        foreach (var record in text.Split('\n'))
        {
            var space = record.IndexOf(' ');
            if (space < 0) continue;
            var kv = record[(space + 1)..];
            if (kv.StartsWith("path=", StringComparison.Ordinal)) return kv[5..];
        }
        return null;
    }

    /// <summary>False for absolute member names and names with a <c>..</c> component.</summary>
    public static bool IsSafe(string name) =>
        name.Length > 0 && !name.StartsWith('/') && !name.StartsWith('\\') && !(name.Length > 1 && name[1] == ':')
        && !name.Split('/', '\\').Any(part => part == "..");
}
