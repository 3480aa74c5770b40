using System.Buffers.Binary;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// Structural completeness checks run before decoding. ImageSharp decodes a truncated JPEG or PNG without complaint
/// (the missing part comes out black), while Pillow raises "image file is truncated"; silently extracting features
/// from half an image is worse than an error, so we walk the container structure and refuse files that end early.
/// </summary>
public static class EncodedImageIntegrity
{
    /// <summary>Throws <see cref="ImageDecodeException"/> when a JPEG, PNG, GIF, WebP or BMP stream ends before its structure does.</summary>
    /// <param name="data">The whole file.</param>
    /// <param name="formatName">ImageSharp's format name (JPEG, PNG, ...); other formats are not checked here.</param>
    public static void ThrowIfTruncated(ReadOnlySpan<byte> data, string formatName)
    {
        var problem = formatName switch
        {
            "JPEG" => CheckJpeg(data),
            "PNG" => CheckPng(data),
            "GIF" => CheckGif(data),
            "Webp" or "WEBP" or "WebP" => CheckWebp(data),
            "BMP" => CheckBmp(data),
            _ => null,
        };
        if (problem is not null)
            throw new ImageDecodeException($"truncated {formatName}: {problem} ({data.Length} bytes)");
    }

    private static string? CheckJpeg(ReadOnlySpan<byte> d)
    {
        var i = 2; // after SOI
        while (true)
        {
            if (i >= d.Length) return "ends before the end-of-image marker";
            if (d[i] != 0xFF) return $"expected a marker at byte {i}";
            while (i < d.Length && d[i] == 0xFF) i++; // fill bytes
            if (i >= d.Length) return "ends inside a marker";
            var marker = d[i++];
            if (marker == 0xD9) return null; // EOI
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) continue; // standalone markers
            if (i + 2 > d.Length) return "ends inside a segment header";
            var length = BinaryPrimitives.ReadUInt16BigEndian(d[i..]);
            if (length < 2 || i + length > d.Length) return $"segment 0xFF{marker:X2} runs past the end of the file";
            i += length;
            if (marker != 0xDA) continue;
            // Entropy-coded data: runs to the next marker that is not a stuffed 0xFF00 or a restart marker.
            while (true)
            {
                var ff = d[i..].IndexOf((byte)0xFF);
                if (ff < 0) return "ends inside the compressed image data";
                i += ff;
                if (i + 1 >= d.Length) return "ends inside the compressed image data";
                var next = d[i + 1];
                if (next == 0x00 || next is >= 0xD0 and <= 0xD7 || next == 0xFF) { i += next == 0xFF ? 1 : 2; continue; }
                break;
            }
        }
    }

    private static string? CheckPng(ReadOnlySpan<byte> d)
    {
        var i = 8;
        while (true)
        {
            if (i + 8 > d.Length) return "ends before the IEND chunk";
            var length = BinaryPrimitives.ReadUInt32BigEndian(d[i..]);
            var type = d.Slice(i + 4, 4);
            if (length > int.MaxValue || i + 12L + length > d.Length) return $"chunk '{System.Text.Encoding.ASCII.GetString(type)}' runs past the end of the file";
            if (type.SequenceEqual("IEND"u8)) return null;
            i += 12 + (int)length;
        }
    }

    private static string? CheckGif(ReadOnlySpan<byte> d)
    {
        if (d.Length < 13) return "header incomplete";
        var i = 13;
        var flags = d[10];
        if ((flags & 0x80) != 0) i += 3 * (1 << ((flags & 7) + 1));
        while (true)
        {
            if (i >= d.Length) return "ends before the first image";
            var block = d[i++];
            if (block == 0x3B) return "no image before the trailer";
            if (block == 0x21)
            {
                if (i >= d.Length) return "ends inside an extension";
                i++; // label
                if (!SkipSubBlocks(d, ref i)) return "ends inside an extension";
                continue;
            }
            if (block != 0x2C) return $"unexpected block 0x{block:X2} at byte {i - 1}";
            if (i + 9 > d.Length) return "ends inside an image descriptor";
            var localFlags = d[i + 8];
            i += 9;
            if ((localFlags & 0x80) != 0) i += 3 * (1 << ((localFlags & 7) + 1));
            i++; // LZW minimum code size
            return SkipSubBlocks(d, ref i) ? null : "ends inside the first image's data";
        }
    }

    private static bool SkipSubBlocks(ReadOnlySpan<byte> d, ref int i)
    {
        while (i < d.Length)
        {
            var size = d[i++];
            if (size == 0) return true;
            i += size;
        }
        return false;
    }

    private static string? CheckWebp(ReadOnlySpan<byte> d)
    {
        if (d.Length < 12) return "header incomplete";
        var riffSize = BinaryPrimitives.ReadUInt32LittleEndian(d[4..]);
        return riffSize + 8L > d.Length ? $"RIFF header declares {riffSize + 8L} bytes" : null;
    }

    private static string? CheckBmp(ReadOnlySpan<byte> d)
    {
        if (d.Length < 54) return "header incomplete";
        var dataOffset = BinaryPrimitives.ReadUInt32LittleEndian(d[10..]);
        var width = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(d[18..]));
        var height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(d[22..]));
        var bpp = BinaryPrimitives.ReadUInt16LittleEndian(d[28..]);
        var compression = BinaryPrimitives.ReadUInt32LittleEndian(d[30..]);
        if (compression is not (0 or 3)) return null; // RLE and others: sizes are not implied by the header
        var rowBytes = (width * bpp + 31) / 32 * 4;
        var needed = dataOffset + rowBytes * height;
        return needed > d.Length ? $"pixel data needs {needed} bytes" : null;
    }
}
