using System.Diagnostics;
using System.Formats.Tar;
using System.Runtime.InteropServices;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Tests.Sources;

/// <summary>
/// Hostile entries of an input folder: each is refused from a stat, never opened for reading where opening or reading
/// would block, loop or fill memory, and the reason is what errors.csv gets.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class InputFileTests
{
    // A regression must fail the test, not hang it.
    private static T Within<T>(Func<T> body, int seconds = 10)
    {
        var task = Task.Run(body);
        Assert.True(task.Wait(TimeSpan.FromSeconds(seconds)), $"did not return within {seconds} s (blocked on a FIFO or reading a device?)");
        return task.Result;
    }

    private static Dictionary<string, string> ProblemsByName(InputListing listing) =>
        listing.Problems.ToDictionary(p => Path.GetFileName(p.Key), p => p.Reason);

    internal static void MakeFifo(string path)
    {
        Assert.Equal(0, MkFifo(path, 0x1A4 /* 0644 */));
    }

    /// <summary>An 8 GiB sparse file that starts as a JPEG: no disk space, any read of it whole would need 8 GiB.</summary>
    internal static void MakeSparse(string path, long length)
    {
        using var f = new FileStream(path, FileMode.CreateNew);
        f.Write([0xFF, 0xD8, 0xFF, 0xE0]);
        f.SetLength(length);
    }

    /// <summary>Gives <paramref name="path"/> the file name <paramref name="name"/> (bytes, not UTF-8) in the same folder.</summary>
    internal static string RenameToBytes(string path, byte[] name)
    {
        var folder = Path.GetDirectoryName(path)!;
        byte[] target = [.. System.Text.Encoding.UTF8.GetBytes(folder + "/"), .. name, 0];
        Assert.Equal(0, Rename([.. System.Text.Encoding.UTF8.GetBytes(path), 0], target));
        return FileNameBytes.Decode(target.AsSpan(0, target.Length - 1));
    }

    /// <summary>Deletes a file by its name's bytes (.NET cannot, so TempDir would leave it behind).</summary>
    internal static void DeleteByBytes(string path) => Assert.Equal(0, Unlink(FileNameBytes.Encode(path)));

    [SkippableFact]
    public void A_fifo_named_like_a_jpeg_is_refused_without_being_opened()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "FIFOs and statx: Linux");
        using var tmp = new Fixtures.TempDir();
        var dir = Directory.CreateDirectory(tmp.File("in")).FullName;
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), Path.Combine(dir, "good.jpg"));
        var fifo = Path.Combine(dir, "pipe.jpg");
        MakeFifo(fifo);

        // Walked folder and explicit argument alike; opening it for reading would block (no writer).
        var listing = Within(() => FolderSource.Enumerate([dir]));
        Assert.Equal(["good.jpg"], listing.Items.Select(i => Path.GetFileName(i.Key)));
        Assert.Equal("not a regular file (FIFO)", ProblemsByName(listing)["pipe.jpg"]);
        Assert.Equal("not a regular file (FIFO)", Assert.Single(Within(() => FolderSource.Enumerate([fifo])).Problems).Reason);

        // Swapped in after the listing: the O_NONBLOCK open returns at once and the open handle is refused.
        var item = new InputItem(fifo, fifo);
        var e = Within(() => Assert.Throws<InputFileException>(() => item.ReadBytes()));
        Assert.Equal("not a regular file (FIFO)", e.Message);
    }

    [SkippableFact]
    public void A_fifo_with_a_writer_that_never_writes_is_refused_too()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "FIFOs and statx: Linux");
        using var tmp = new Fixtures.TempDir();
        var fifo = tmp.File("pipe.jpg");
        MakeFifo(fifo);
        using var writer = Process.Start(new ProcessStartInfo("sh", ["-c", $"exec 3>'{fifo}'; sleep 60"]))!;
        try
        {
            var e = Within(() => Assert.Throws<InputFileException>(() => new InputItem(fifo, fifo).ReadBytes()));
            Assert.Equal("not a regular file (FIFO)", e.Message);
        }
        finally
        {
            writer.Kill();
        }
    }

    [SkippableFact]
    public void A_symlink_to_dev_zero_is_refused_naming_the_device()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/dev/zero"), "/dev/zero: Linux");
        using var tmp = new Fixtures.TempDir();
        var dir = Directory.CreateDirectory(tmp.File("in")).FullName;
        var zero = Path.Combine(dir, "zero.jpg");
        File.CreateSymbolicLink(zero, "/dev/zero");

        var listing = Within(() => FolderSource.Enumerate([dir]));
        Assert.Empty(listing.Items);
        Assert.Equal("not a regular file (character device /dev/zero)", ProblemsByName(listing)["zero.jpg"]);
        var e = Within(() => Assert.Throws<InputFileException>(() => new InputItem(zero, zero).ReadBytes()));
        Assert.Equal("not a regular file (character device /dev/zero)", e.Message);
        Assert.Equal("not a regular file (character device)", Assert.Single(FolderSource.Enumerate(["/dev/zero"]).Problems).Reason);
    }

    [Fact]
    public void An_8_GiB_sparse_jpeg_is_refused_from_its_size_before_any_byte_is_read()
    {
        using var tmp = new Fixtures.TempDir();
        var dir = Directory.CreateDirectory(tmp.File("in")).FullName;
        var big = Path.Combine(dir, "big.jpg");
        MakeSparse(big, 8L << 30);

        const string expected = "file of 8.0 GiB (8589934592 bytes), above the limit of 1.0 GiB for one input (raise the file size limit to accept it)";
        var listing = FolderSource.Enumerate([dir]);
        Assert.Empty(listing.Items);
        Assert.Equal(expected, ProblemsByName(listing)["big.jpg"]);
        // Read directly (it grew after the listing): refused from the open handle's size, without allocating 8 GiB.
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InputFileException>(() => new InputItem(big, big).ReadBytes());
        Assert.Equal(expected, e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "nothing the size of the file was allocated");
        Assert.DoesNotContain("2 gigabytes", e.Message);
    }

    [Fact]
    public void The_limit_is_inclusive_and_a_file_at_it_is_read_whole()
    {
        using var tmp = new Fixtures.TempDir();
        var photo = Fixtures.PathOf("photos", "opencv_apple.jpg");
        var size = new FileInfo(photo).Length; // 51705
        var copy = tmp.File("a.jpg");
        File.Copy(photo, copy);
        Assert.Equal(File.ReadAllBytes(photo), new InputItem(copy, copy).ReadBytes(size));
        var e = Assert.Throws<InputFileException>(() => new InputItem(copy, copy).ReadBytes(size - 1));
        Assert.Equal("file of 50.5 KiB (51705 bytes), above the limit of 50.5 KiB for one input (raise the file size limit to accept it)", e.Message);
        Assert.Single(FolderSource.Enumerate([copy], size).Items);
        Assert.Empty(FolderSource.Enumerate([copy], size - 1).Items);
        Assert.Throws<ArgumentException>(() => FolderSource.Enumerate([copy], (long)Array.MaxLength + 1));
    }

    [Fact]
    public void Tar_members_above_the_limit_are_refused_from_their_header()
    {
        using var tmp = new Fixtures.TempDir();
        var small = Fixtures.PathOf("photos", "opencv_apple.jpg"); // 51705 bytes
        var large = Fixtures.PathOf("photos", "skimage_coffee.png"); // 466706 bytes
        var tar = tmp.File("shard.tar");
        using (var writer = new TarWriter(File.Create(tar), TarEntryFormat.Pax))
        {
            writer.WriteEntry(small, "s/small.jpg");
            writer.WriteEntry(large, "s/large.png");
        }
        var listing = FolderSource.Enumerate([tar], 100_000);
        Assert.Equal([tar + "/s/small.jpg"], listing.Items.Select(i => i.Key));
        var problem = Assert.Single(listing.Problems);
        Assert.Equal((tar + "/s/large.png", "tar member of 455.8 KiB (466706 bytes), above the limit of 97.7 KiB for one input (raise the file size limit to accept it)"), (problem.Key, problem.Reason));
        Assert.Equal(File.ReadAllBytes(small), listing.Items[0].ReadBytes(100_000));
        // A member read with a lower limit than it was listed with is refused on reading too.
        Assert.StartsWith("tar member of 50.5 KiB", Assert.Throws<InputFileException>(() => listing.Items[0].ReadBytes(1000)).Message);
    }

    [Fact]
    public void A_tar_member_declaring_8_GiB_is_refused_without_reading_it()
    {
        using var tmp = new Fixtures.TempDir();
        var tar = tmp.File("huge.tar");
        // One member header declaring 8 GiB (GNU base-256 size), its data a hole, then the end-of-archive blocks.
        var header = new byte[512];
        "huge/big.jpg"u8.CopyTo(header);
        "0000644\0"u8.CopyTo(header.AsSpan(100));
        "0000000\0"u8.CopyTo(header.AsSpan(108));
        "0000000\0"u8.CopyTo(header.AsSpan(116));
        header[124] = 0x80;
        BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(8L << 30)).CopyTo(header, 128);
        "00000000000\0"u8.CopyTo(header.AsSpan(136));
        header[156] = (byte)'0';
        "ustar\000"u8.CopyTo(header.AsSpan(257));
        "        "u8.CopyTo(header.AsSpan(148));
        var sum = header.Sum(b => (long)b);
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header, 148);
        using (var f = new FileStream(tar, FileMode.CreateNew))
        {
            f.Write(header);
            f.SetLength(512 + (8L << 30) + 1024);
        }
        var listing = FolderSource.Enumerate([tar]);
        Assert.Empty(listing.Items);
        var problem = Assert.Single(listing.Problems);
        Assert.Equal((tar + "/huge/big.jpg", "tar member of 8.0 GiB (8589934592 bytes), above the limit of 1.0 GiB for one input (raise the file size limit to accept it)"), (problem.Key, problem.Reason));
    }

    [SkippableFact]
    public void A_name_that_is_not_utf8_is_listed_read_and_keyed_with_backslash_x_escapes()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "file names as bytes: Linux");
        using var tmp = new Fixtures.TempDir();
        var dir = Directory.CreateDirectory(tmp.File("in")).FullName;
        var copy = Path.Combine(dir, "tmp.jpg");
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), copy);
        // "café.jpg" in Latin-1, and a name with a truncated UTF-8 sequence (E2 82 without its third byte).
        var latin1 = RenameToBytes(copy, [(byte)'c', (byte)'a', (byte)'f', 0xE9, (byte)'.', (byte)'j', (byte)'p', (byte)'g']);
        File.Copy(Fixtures.PathOf("photos", "opencv_home.jpg"), copy);
        RenameToBytes(copy, [0xE2, 0x82, (byte)'x', (byte)'.', (byte)'j', (byte)'p', (byte)'g']);

        var listing = FolderSource.Enumerate([dir]);
        Assert.Empty(listing.Problems);
        // What Python's b"caf\xe9.jpg".decode("utf-8", "backslashreplace") gives, and b"\xe2\x82x.jpg" likewise.
        Assert.Equal([dir + "/\\xe2\\x82x.jpg", dir + "/caf\\xe9.jpg"], listing.Items.Select(i => i.Key).Order(StringComparer.Ordinal));
        var item = listing.Items.Single(i => i.Key.EndsWith("caf\\xe9.jpg", StringComparison.Ordinal));
        Assert.Equal(latin1, item.Path);
        Assert.Equal(File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_apple.jpg")), item.ReadBytes());
        foreach (var i in listing.Items) DeleteByBytes(i.Path);
    }

    [Fact]
    public void Names_round_trip_through_surrogate_escapes()
    {
        byte[] name = [(byte)'a', 0xE9, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0, 0x80, (byte)'z'];
        var text = FileNameBytes.Decode(name);
        Assert.Equal("a\udce9é😀\udcff\udced\udca0\udc80z", text);
        Assert.Equal([.. name, 0], FileNameBytes.Encode(text));
        Assert.Equal("a\\xe9é😀\\xff\\xed\\xa0\\x80z", FileNameBytes.Escaped(text));
        Assert.Equal("plain/ascii.jpg", FileNameBytes.Escaped(FileNameBytes.Decode("plain/ascii.jpg"u8)));
    }

    [Fact]
    public void Files_in_folders_that_are_not_images_are_listed_not_skipped_silently()
    {
        using var tmp = new Fixtures.TempDir();
        var dir = Directory.CreateDirectory(tmp.File("in")).FullName;
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), Path.Combine(dir, "a.jpg"));
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "text");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        File.WriteAllText(Path.Combine(dir, "sub", "labels.json"), "{}");
        // Named explicitly, a file is tried whatever its extension (and fails at decoding, not here).
        var explicitText = Path.Combine(dir, "sub", "labels.json");

        var listing = FolderSource.Enumerate([dir]);
        Assert.Single(listing.Items);
        Assert.Equal([(Path.Combine(dir, "notes.txt"), FolderSource.NotAnImage), (Path.Combine(dir, "sub", "labels.json"), FolderSource.NotAnImage)],
            listing.Problems.Select(p => (p.Key, p.Reason)).Order());
        Assert.Equal((2, 2), (listing.SkippedNonImageFiles, listing.ListedNonImageFiles));
        Assert.Equal([explicitText], FolderSource.Enumerate([explicitText]).Items.Select(i => i.Key));
    }

    [DllImport("libc", EntryPoint = "mkfifo")]
    private static extern int MkFifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    [DllImport("libc", EntryPoint = "unlink")]
    private static extern int Unlink(byte[] path);

    [DllImport("libc", EntryPoint = "rename")]
    private static extern int Rename(byte[] oldPath, byte[] newPath);
}
