using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FeatureOnnx.Sources;

/// <summary>What a path is, after following symlinks.</summary>
public enum InputFileKind
{
    /// <summary>Nothing there (or a broken symlink).</summary>
    Missing,
    /// <summary>A regular file: the only kind that is read.</summary>
    Regular,
    /// <summary>A folder.</summary>
    Directory,
    /// <summary>A named pipe: opening it for reading blocks until a writer comes, reading it until the writer writes.</summary>
    Fifo,
    /// <summary>A Unix socket.</summary>
    Socket,
    /// <summary>A character device (/dev/zero, /dev/urandom, a terminal): endless or blocking.</summary>
    CharacterDevice,
    /// <summary>A block device (a whole disk).</summary>
    BlockDevice,
    /// <summary>Could not be looked at (permission, symlink loop, I/O error): <see cref="InputFileStatus.Error"/> says why.</summary>
    Unreadable,
}

/// <summary>One look at a path (stat, symlinks followed).</summary>
/// <param name="Kind">What it is.</param>
/// <param name="Size">Bytes, for a regular file.</param>
/// <param name="Identity">Names the file itself (device and inode), whatever the route to it; for finding folder loops.</param>
/// <param name="Error">Why it could not be looked at, for <see cref="InputFileKind.Unreadable"/>.</param>
public readonly record struct InputFileStatus(InputFileKind Kind, long Size, string Identity, string? Error = null);

/// <summary>Why one input file is refused; the message is its errors.csv reason.</summary>
public sealed class InputFileException(string message) : IOException(message);

/// <summary>
/// The one way inputs are looked at and read, so that no entry of an input folder can hang, crash or balloon a run.
/// Only regular files are read: a path is stat'ed (symlinks followed) before it is opened, and it is opened with
/// O_NONBLOCK and checked again on the open handle, so a FIFO never blocks the open (it would until a writer came), a
/// device (a symlink to /dev/zero) is never read, and a file swapped for either between the two looks is still refused.
/// The size comes from the same stat: a file above the limit is refused before any byte of it is read.
/// <para>On Linux (x64, arm64) this is libc's statx, open, opendir and readdir on the name's bytes: .NET's own APIs
/// cannot tell a FIFO or a device from a file (FileAttributes and UnixFileMode carry no file type), open with a
/// blocking open(2), and decode names as UTF-8, losing the bytes of a name that is not (<see cref="FileNameBytes"/>).
/// statx has the same struct layout on every architecture, unlike stat. Elsewhere .NET's APIs are used.</para>
/// </summary>
public static partial class InputFile
{
    /// <summary>
    /// Default limit of one input file's size: 1 GiB. A 100-megapixel image (the default pixel limit) in the least
    /// compact format we decode, 16-bit RGBA TIFF or PNG stored uncompressed, is 800 MB; 256 MiB would already refuse
    /// a 100-megapixel 24-bit BMP (300 MB). Decoding such an image takes as much memory again, so the limit does not
    /// raise what the pixel limit already lets one input cost.
    /// </summary>
    public const long DefaultMaxFileBytes = 1L << 30;

    /// <summary>The largest limit: one .NET array holds at most this many bytes.</summary>
    public static long LargestMaxFileBytes => Array.MaxLength;

    private static readonly bool Native = OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64 && StatxWorks();

    /// <summary>Checks a file size limit.</summary>
    /// <exception cref="ArgumentException">Not between 1 and <see cref="LargestMaxFileBytes"/>.</exception>
    public static void CheckLimit(long maxFileBytes)
    {
        if (maxFileBytes < 1 || maxFileBytes > LargestMaxFileBytes)
            throw new ArgumentException($"the file size limit must be between 1 byte and {LargestMaxFileBytes} bytes (2 GiB, the most one .NET array holds); got {maxFileBytes}.");
    }

    /// <summary>Looks at <paramref name="path"/> (symlinks followed); never opens it.</summary>
    public static InputFileStatus Stat(string path)
    {
        return Native ? NativeStat(path) : ManagedStat(path);
    }

    private static InputFileStatus NativeStat(string path)
    {
        var name = FileNameBytes.Encode(path);
        Span<byte> buffer = stackalloc byte[StatxSize];
        int result, errno;
        unsafe
        {
            fixed (byte* p = name)
            fixed (byte* b = buffer)
            {
                result = Statx(AtFdCwd, p, 0, StatxMask, b);
                errno = Marshal.GetLastPInvokeError();
            }
        }
        return result == 0 ? FromStatx(buffer) : FromErrno(errno);
    }

    /// <summary>
    /// Why <paramref name="path"/>, of status <paramref name="status"/>, is not read (null: it is a regular file),
    /// e.g. <c>not a regular file (character device /dev/zero)</c>: through a symlink, its final target is named.
    /// </summary>
    public static string? Refusal(string path, InputFileStatus status) => status.Kind switch
    {
        InputFileKind.Regular => null,
        InputFileKind.Missing => "broken symlink or vanished file",
        InputFileKind.Unreadable => $"unreadable: {status.Error}",
        InputFileKind.Directory => "a folder where a file was expected",
        _ => $"not a regular file ({KindName(status.Kind)}{(Target(path) is { } target ? " " + target : "")})",
    };

    /// <summary>Why a file or tar member of <paramref name="size"/> bytes is refused (null: within the limit).</summary>
    public static string? SizeRefusal(long size, long maxFileBytes, string what = "file") =>
        size <= maxFileBytes ? null
            : $"{what} of {Human(size)} ({size.ToString(CultureInfo.InvariantCulture)} bytes), above the limit of {Human(maxFileBytes)} for one input (raise the file size limit to accept it)";

    /// <summary>
    /// Reads <paramref name="length"/> bytes at <paramref name="offset"/> of <paramref name="path"/> (-1: the whole
    /// file), after checking on the open handle that it is a regular file and that what is read is within
    /// <paramref name="maxFileBytes"/>.
    /// </summary>
    /// <exception cref="InputFileException">Not a regular file, too large, or shorter than expected.</exception>
    /// <exception cref="FileNotFoundException">The file vanished.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to read it.</exception>
    /// <exception cref="IOException">Another error of the operating system.</exception>
    public static byte[] Read(string path, long offset, long length, long maxFileBytes)
    {
        using var handle = OpenRegular(path, out var size);
        var what = length < 0 ? "file" : "tar member";
        if (length < 0) length = size;
        if (SizeRefusal(length, maxFileBytes, what) is { } tooLarge) throw new InputFileException(tooLarge);
        if (offset + length > size) throw new InputFileException($"the file is {size} bytes, shorter than the {what} expected at {offset}+{length}: it changed since it was listed");
        var data = GC.AllocateUninitializedArray<byte>((int)length);
        var read = 0;
        while (read < data.Length)
        {
            var n = RandomAccess.Read(handle, data.AsSpan(read), offset + read);
            if (n == 0) throw new InputFileException($"the file ended after {read} of {length} bytes: it was cut while being read");
            read += n;
        }
        return data;
    }

    /// <summary>Opens a regular file for reading (never blocking on a FIFO) and gives its size, from the open handle.</summary>
    /// <exception cref="InputFileException">Not a regular file.</exception>
    public static SafeFileHandle OpenRegular(string path, out long size)
    {
        if (!Native)
        {
            var managed = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            size = RandomAccess.GetLength(managed);
            return managed;
        }
        var name = FileNameBytes.Encode(path);
        int fd, errno;
        unsafe
        {
            fixed (byte* p = name)
            {
                fd = Open(p, ORdOnly | ONonBlock | OCloExec | ONoCtty);
                errno = Marshal.GetLastPInvokeError();
            }
        }
        if (fd < 0) throw ErrnoException(errno, path);
        var handle = new SafeFileHandle((nint)fd, ownsHandle: true);
        try
        {
            Span<byte> buffer = stackalloc byte[StatxSize];
            int result;
            unsafe
            {
                fixed (byte* empty = "\0"u8)
                fixed (byte* b = buffer)
                {
                    result = Statx(fd, empty, AtEmptyPath, StatxMask, b);
                    errno = Marshal.GetLastPInvokeError();
                }
            }
            if (result != 0) throw ErrnoException(errno, path);
            var status = FromStatx(buffer);
            if (Refusal(path, status) is { } refusal) throw new InputFileException(refusal);
            size = status.Size;
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The names in folder <paramref name="path"/> (not . and ..), bytes that are not UTF-8 kept (<see cref="FileNameBytes"/>).</summary>
    /// <exception cref="IOException">The folder cannot be listed.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to list it.</exception>
    public static List<string> List(string path)
    {
        if (!Native) return Directory.EnumerateFileSystemEntries(path).Select(e => Path.GetFileName(e)).ToList();
        var names = new List<string>();
        var name = FileNameBytes.Encode(path);
        unsafe
        {
            nint dir;
            fixed (byte* p = name) dir = OpenDir(p);
            if (dir == 0) throw ErrnoException(Marshal.GetLastPInvokeError(), path);
            try
            {
                while (true)
                {
                    var entry = ReadDir(dir);
                    if (entry == 0)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        if (errno != 0) throw ErrnoException(errno, path);
                        break;
                    }
                    // struct dirent on 64-bit Linux (glibc and musl): d_ino 8, d_off 8, d_reclen 2, d_type 1, then d_name.
                    var entryName = MemoryMarshal.CreateReadOnlySpanFromNullTerminated((byte*)entry + 19);
                    if (entryName.SequenceEqual("."u8) || entryName.SequenceEqual(".."u8)) continue;
                    names.Add(FileNameBytes.Decode(entryName));
                }
            }
            finally
            {
                _ = CloseDir(dir);
            }
        }
        return names;
    }

    /// <summary>Bytes as 1.5 GiB, 300.0 MiB, 12 B.</summary>
    public static string Human(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.0} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };

    private static string KindName(InputFileKind kind) => kind switch
    {
        InputFileKind.Fifo => "FIFO",
        InputFileKind.Socket => "socket",
        InputFileKind.CharacterDevice => "character device",
        InputFileKind.BlockDevice => "block device",
        _ => "unknown type",
    };

    // The final target when path is reached through a symlink (/dev/zero for zero.jpg -> /dev/zero); null otherwise.
    private static string? Target(string path)
    {
        string? real = null;
        if (Native)
        {
            var name = FileNameBytes.Encode(path);
            unsafe
            {
                byte* resolved;
                fixed (byte* p = name) resolved = RealPath(p, null);
                if (resolved is not null)
                {
                    real = FileNameBytes.Decode(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(resolved));
                    Free(resolved);
                }
            }
        }
        else
        {
            try { real = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName; }
            catch (IOException) { }
        }
        return real is null || real == Path.GetFullPath(path) ? null : FileNameBytes.Escaped(real);
    }

    private static Exception ErrnoException(int errno, string path)
    {
        var message = $"{Marshal.GetPInvokeErrorMessage(errno)}";
        return errno switch
        {
            ENoEnt or ENotDir => new FileNotFoundException(message, FileNameBytes.Escaped(path)),
            EAcces or EPerm => new UnauthorizedAccessException(message),
            _ => new IOException(message),
        };
    }

    private static InputFileStatus FromErrno(int errno) => errno is ENoEnt or ENotDir
        ? new InputFileStatus(InputFileKind.Missing, 0, "")
        : new InputFileStatus(InputFileKind.Unreadable, 0, "", Marshal.GetPInvokeErrorMessage(errno));

    // struct statx is the same on every Linux architecture: stx_mode u16 at 28, stx_ino u64 at 32, stx_size u64 at 40,
    // stx_dev_major and stx_dev_minor u32 at 136 and 140.
    private static InputFileStatus FromStatx(ReadOnlySpan<byte> b)
    {
        var mode = BitConverter.ToUInt16(b[28..]);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => InputFileKind.Regular,
            0x4000 => InputFileKind.Directory,
            0x1000 => InputFileKind.Fifo,
            0xC000 => InputFileKind.Socket,
            0x2000 => InputFileKind.CharacterDevice,
            0x6000 => InputFileKind.BlockDevice,
            _ => InputFileKind.Unreadable,
        };
        var identity = string.Create(CultureInfo.InvariantCulture, $"{BitConverter.ToUInt32(b[136..])}:{BitConverter.ToUInt32(b[140..])}:{BitConverter.ToUInt64(b[32..])}");
        return new InputFileStatus(kind, (long)BitConverter.ToUInt64(b[40..]), identity, kind == InputFileKind.Unreadable ? "unknown file type" : null);
    }

    private static InputFileStatus ManagedStat(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                var info = new DirectoryInfo(path);
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                return new InputFileStatus(InputFileKind.Directory, 0, (target?.FullName ?? info.FullName).TrimEnd(Path.DirectorySeparatorChar));
            }
            if (File.Exists(path))
                return new InputFileStatus(InputFileKind.Regular, new FileInfo(path).Length, Path.GetFullPath(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new InputFileStatus(InputFileKind.Unreadable, 0, "", e.Message);
        }
        return new InputFileStatus(InputFileKind.Missing, 0, "");
    }

    private static bool StatxWorks()
    {
        try
        {
            return NativeStat("/").Kind == InputFileKind.Directory;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // not glibc >= 2.28 or musl >= 1.2.5: .NET's APIs
        }
    }

    private const int StatxSize = 256;
    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxMask = 0x1 | 0x100 | 0x200; // STATX_TYPE | STATX_INO | STATX_SIZE
    private const int ORdOnly = 0, ONoCtty = 0x100, ONonBlock = 0x800, OCloExec = 0x80000; // x64 and arm64
    private const int EPerm = 1, ENoEnt = 2, EAcces = 13, ENotDir = 20;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static unsafe partial int Statx(int dirFd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static unsafe partial int Open(byte* path, int flags);

    [LibraryImport("libc", EntryPoint = "opendir", SetLastError = true)]
    private static unsafe partial nint OpenDir(byte* path);

    [LibraryImport("libc", EntryPoint = "readdir", SetLastError = true)]
    private static partial nint ReadDir(nint dir);

    [LibraryImport("libc", EntryPoint = "closedir")]
    private static partial int CloseDir(nint dir);

    [LibraryImport("libc", EntryPoint = "realpath")]
    private static unsafe partial byte* RealPath(byte* path, byte* resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static unsafe partial void Free(void* pointer);
}
