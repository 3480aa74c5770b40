using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FeatureOnnx.Preprocessing;

/// <summary>
/// Decodes JPEG with libjpeg-turbo through its TurboJPEG C API (<c>libturbojpeg.so.0</c>: the copy every build carries
/// next to the app, src/FeatureOnnx/native/linux-x64/, else the system's, Debian/Ubuntu package <c>libturbojpeg0</c>), giving the same pixels as Pillow's <c>Image.open(f).convert('RGB')</c> when Pillow
/// is linked against the same libjpeg-turbo (Debian 12: Pillow 9.4 on libjpeg62-turbo 2.1.5, the same source as
/// libturbojpeg0 2.1.5; checked bit-exact by the tests). libjpeg's defaults are used, as Pillow uses them: the
/// accurate integer IDCT (JDCT_ISLOW) and fancy (triangle-filter) chroma upsampling; no scaling unless a scale
/// denominator is asked for, and then libjpeg's 1/2, 1/4 or 1/8 DCT-domain scaling, the decode Pillow's
/// <c>Image.draft</c> asks for (<c>scale_num = 1, scale_denom = s</c>; bit-exact against Pillow too).
/// </summary>
/// <remarks>
/// <para>Colour handling follows Pillow 9.4: greyscale JPEGs come out with R=G=B (mode L, then convert('RGB'));
/// three-component JPEGs are converted by libjpeg (YCbCr or RGB, as the file's JFIF/Adobe markers say); four-component
/// JPEGs (CMYK or YCCK) are decoded to CMYK by libjpeg, inverted as Pillow's rawmode <c>CMYK;I</c> does for every
/// CMYK JPEG (it assumes Adobe's inverted polarity whether or not an Adobe marker is present), and converted with
/// Pillow's <c>cmyk2rgb</c> (<c>nk = 255 - k; r = nk - MULDIV255(c, nk)</c>), so CMYK is exact too and never needs a
/// fallback.</para>
/// <para>Errors: a stream that ends before its structure does is refused (Pillow: "image file is truncated"), as is
/// one on which libjpeg gives up (12-bit or lossless JPEG, broken headers). libjpeg <i>warnings</i> on a complete
/// stream (extraneous bytes before a marker, a corrupt entropy segment) are tolerated, as Pillow tolerates them: the
/// pixels are libjpeg's best effort, the same ones Pillow returns.</para>
/// <para>EXIF orientation is not applied; the caller does that on the returned image.</para>
/// <para>Thread-safe: a TurboJPEG handle serves one call at a time, so each <see cref="Decode"/> rents a handle from a
/// pool owned by this instance (one per concurrently decoding thread, reused afterwards). <see cref="Dispose"/>
/// frees the idle handles; each handle is also a <see cref="SafeHandle"/>, so none leaks if the decoder is never
/// disposed.</para>
/// </remarks>
public sealed unsafe class TurboJpegDecoder : IDisposable
{
    private const int TJPF_RGB = 0;
    private const int TJPF_CMYK = 11;
    private const int TJCS_CMYK = 3;
    private const int TJCS_YCCK = 4;
    private const int TJERR_WARNING = 0;
    // TurboJPEG 2.1 ignores ACCURATEDCT on decompression (ISLOW is libjpeg's default; only FASTDCT changes it) and does
    // fancy upsampling unless FASTUPSAMPLE is given; ACCURATEDCT is passed to state the intent and for other versions.
    private const int TJFLAG_ACCURATEDCT = 4096;
    private const int TJFLAG_STOPONWARNING = 8192;

    private readonly ConcurrentBag<TjHandle> _idle = [];
    private volatile bool _disposed;

    /// <summary>True when libturbojpeg was found and exports the functions this class calls. Never throws.</summary>
    public static bool IsAvailable => Native.Loaded;

    /// <summary>Why <see cref="IsAvailable"/> is false; null when it is true.</summary>
    public static string? UnavailableReason => Native.FailureReason;

    /// <summary>Environment variable read once, at first use: unset loads the copy bundled next to the app, else the
    /// system's <c>libturbojpeg.so.0</c>; <c>off</c> (or <c>0</c>, <c>none</c>) makes TurboJPEG unavailable on purpose;
    /// anything else is the file name or path of the library to load, and failing to load it is a
    /// <see cref="ConfigurationError"/>, never a silent fallback.</summary>
    public const string EnvironmentVariable = "FEATUREONNX_TURBOJPEG";

    /// <summary>The library name that was loaded (e.g. <c>libturbojpeg.so.0</c>); null when none was.</summary>
    public static string? LibraryName => Native.LibraryName;

    /// <summary>Full path of the loaded library file, when it could be found; null when none was loaded.</summary>
    public static string? LibraryPath => Native.LibraryPath;

    /// <summary>libjpeg-turbo's version as the loaded library states it (e.g. <c>2.1.5</c>); null when unknown.</summary>
    public static string? Version => Native.Version;

    /// <summary>True when the loaded library is the copy shipped next to the app (not the system's).</summary>
    public static bool IsBundled => Native.LibraryPath is { } path && IsUnder(path, AppContext.BaseDirectory);

    /// <summary>
    /// Set when <see cref="EnvironmentVariable"/> names a library that cannot be loaded: the user asked for a specific
    /// decoder, so callers must fail with this message instead of falling back to ImageSharp. Null otherwise.
    /// </summary>
    public static string? ConfigurationError => Native.ConfigurationError;

    /// <summary>How run summaries name the JPEG decoder, e.g. <c>libjpeg-turbo 2.1.5 (bundled: /app/libturbojpeg.so.0)</c>;
    /// null when TurboJPEG is not available.</summary>
    public static string? Description => !IsAvailable ? null
        : $"libjpeg-turbo {Version ?? "(version unknown)"} ({(IsBundled ? "bundled" : "system")}: {LibraryPath ?? LibraryName})";

    private static bool IsUnder(string path, string folder) =>
        Path.GetFullPath(path).StartsWith(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>Creates a decoder.</summary>
    /// <exception cref="InvalidOperationException">libturbojpeg is not available (<see cref="UnavailableReason"/> says why).</exception>
    public TurboJpegDecoder()
    {
        if (!IsAvailable) throw new InvalidOperationException($"TurboJPEG is not available: {UnavailableReason}");
    }

    /// <summary>A decoder, or null when libturbojpeg is not available.</summary>
    public static TurboJpegDecoder? TryCreate() => IsAvailable ? new TurboJpegDecoder() : null;

    /// <summary>Decodes a whole JPEG file to 8-bit RGB, Pillow's <c>convert('RGB')</c> pixels; with a
    /// <paramref name="scaleDenominator"/> s > 1, at <c>ceil(W / s) x ceil(H / s)</c>: Pillow's pixels after <c>Image.draft</c> chose that scale.</summary>
    /// <param name="jpeg">The complete file.</param>
    /// <param name="maxPixels">Refuse, before decoding pixels, a header declaring more pixels than this (full size, whatever the scale).</param>
    /// <param name="scaleDenominator">1, 2, 4 or 8. TurboJPEG picks its factor from the output size, which is
    /// unambiguous (exactly libjpeg's 1/s, Pillow's) when both sides are at least 16 s; <see cref="DecodeScale.DenominatorFor"/> keeps to that.</param>
    /// <exception cref="ImageDecodeException">Not a JPEG, truncated, corrupt, unsupported, or too large; the message says which.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The denominator is not 1, 2, 4 or 8.</exception>
    /// <exception cref="ObjectDisposedException">The decoder was disposed.</exception>
    public RgbImage Decode(ReadOnlySpan<byte> jpeg, long maxPixels = long.MaxValue, int scaleDenominator = 1)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckDenominator(scaleDenominator);
        if (jpeg.Length < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8)
            throw new ImageDecodeException("not a JPEG (no start-of-image marker)");
        // The memory source of TurboJPEG turns running out of data into a warning plus a fake end-of-image marker
        // (the missing rows come out grey); Pillow raises "image file is truncated" instead, and so do we.
        EncodedImageIntegrity.ThrowIfTruncated(jpeg, "JPEG");
        return DecodeStructureChecked(jpeg, maxPixels, scaleDenominator);
    }

    private static void CheckDenominator(int scaleDenominator)
    {
        if (scaleDenominator is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(scaleDenominator), scaleDenominator, "libjpeg scales by 1/1, 1/2, 1/4 or 1/8.");
    }

    /// <summary>
    /// <see cref="Decode"/> for a stream whose JPEG structure <see cref="EncodedImageIntegrity.ThrowIfTruncated"/> has
    /// already accepted (<see cref="ImageDecoder"/> checks it while identifying the file), so it is not walked twice.
    /// </summary>
    internal RgbImage DecodeStructureChecked(ReadOnlySpan<byte> jpeg, long maxPixels, int scaleDenominator = 1)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckDenominator(scaleDenominator);
        var handle = Rent();
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return DecodeWith(handle.DangerousGetHandle(), jpeg, maxPixels, scaleDenominator);
        }
        finally
        {
            if (added) handle.DangerousRelease();
            Return(handle);
        }
    }

    private static RgbImage DecodeWith(nint tj, ReadOnlySpan<byte> jpeg, long maxPixels, int scaleDenominator)
    {
        int fullWidth = 0, fullHeight = 0, subsampling = -1, colorspace = -1;
        fixed (byte* src = jpeg)
        {
            var size = new CULong((nuint)jpeg.Length);
            var rc = Native.DecompressHeader3(tj, src, size, &fullWidth, &fullHeight, &subsampling, &colorspace);
            // rc is -1 after a mere warning too, and after an unusual subsampling that tjDecompress2 handles fine; the
            // outputs are written only once the header was read, so they say whether it was.
            if (fullWidth < 1 || fullHeight < 1 || colorspace < 0)
                throw new ImageDecodeException(rc == 0
                    ? "JPEG holds no image (tables only)"
                    : $"corrupt JPEG: {Native.ErrorString(tj)}");

            var fullPixels = (long)fullWidth * fullHeight;
            if (fullPixels > maxPixels) // the limit is on the file, whatever the scale: a bomb stays refused from its header
                throw new ImageDecodeException($"JPEG header declares {fullWidth}x{fullHeight} = {fullPixels / 1e6:0.#} megapixels, above the limit of {maxPixels / 1e6:0.#} (raise ImageDecoderOptions.MaxPixels to accept it)");
            // TJSCALED(dim, 1/s): tjDecompress2 picks the scaling factor from the output size asked for.
            var width = (fullWidth + scaleDenominator - 1) / scaleDenominator;
            var height = (fullHeight + scaleDenominator - 1) / scaleDenominator;
            var pixels = (long)width * height;
            var cmyk = colorspace is TJCS_CMYK or TJCS_YCCK;
            var channels = cmyk ? 4 : 3;
            if (pixels * channels > Array.MaxLength)
                throw new ImageDecodeException($"JPEG of {width}x{height} is too large to decode into one buffer");

            var length = (int)(pixels * channels);
            var format = cmyk ? TJPF_CMYK : TJPF_RGB;
            byte[]? rented = cmyk ? ArrayPool<byte>.Shared.Rent(length) : null;
            try
            {
                var output = rented ?? new byte[length];
                fixed (byte* dst = output)
                {
                    rc = Native.Decompress2(tj, src, size, dst, width, width * channels, height, format, TJFLAG_ACCURATEDCT);
                    if (rc != 0) ThrowUnlessOnlyWarnings(tj, src, size, width, height, channels, format);
                }
                return new RgbImage(width, height, cmyk ? PilCmykToRgb(output.AsSpan(0, length), width * height) : output);
            }
            finally
            {
                if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// tjDecompress2 returned -1. tjGetErrorCode says TJERR_WARNING whenever a warning was emitted, even if a fatal
    /// error came after it, so a warning is trusted only if the message left behind is the first warning's (libjpeg
    /// prints only the first warning; a later fatal error overwrites it): a second pass that stops at the first
    /// warning tells which message that is. This pass runs only for damaged files.
    /// </summary>
    private static void ThrowUnlessOnlyWarnings(nint tj, byte* src, CULong size, int width, int height, int channels, int format)
    {
        var fatal = Native.GetErrorCode(tj) != TJERR_WARNING;
        var message = Native.ErrorString(tj);
        if (fatal) throw new ImageDecodeException($"corrupt JPEG: {message}");

        var scratch = ArrayPool<byte>.Shared.Rent(width * height * channels);
        string firstWarning;
        try
        {
            fixed (byte* dst = scratch)
                Native.Decompress2(tj, src, size, dst, width, width * channels, height, format, TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING);
            firstWarning = Native.ErrorString(tj);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        if (message != firstWarning)
            throw new ImageDecodeException($"corrupt JPEG: {message} (after the warning: {firstWarning})");
        if (message.StartsWith("Premature end of JPEG file", StringComparison.Ordinal))
            throw new ImageDecodeException($"truncated JPEG: {message}");
        // Only warnings: keep libjpeg's pixels, as Pillow does.
    }

    /// <summary>
    /// Pillow 9.4: JPEG CMYK is read with rawmode "CMYK;I" (each byte inverted), then Convert.c's cmyk2rgb:
    /// <c>nk = 255 - k; out = CLIP8(nk - MULDIV255(c, nk))</c>, MULDIV255(a, b) = (t = a*b + 128, ((t >> 8) + t) >> 8).
    /// </summary>
    internal static byte[] PilCmykToRgb(ReadOnlySpan<byte> libjpegCmyk, int pixelCount)
    {
        var rgb = new byte[pixelCount * 3];
        for (int i = 0, s = 0, d = 0; i < pixelCount; i++, s += 4, d += 3)
        {
            var nk = libjpegCmyk[s + 3]; // 255 - (255 - raw k)
            for (var c = 0; c < 3; c++)
            {
                var value = 255 - libjpegCmyk[s + c];
                var t = value * nk + 128;
                rgb[d + c] = (byte)Math.Clamp(nk - (((t >> 8) + t) >> 8), 0, 255);
            }
        }
        return rgb;
    }

    private TjHandle Rent() => _idle.TryTake(out var handle) ? handle : TjHandle.Create();

    private void Return(TjHandle handle)
    {
        if (_disposed) { handle.Dispose(); return; }
        _idle.Add(handle);
        if (_disposed) DrainIdle(); // Dispose ran between the check and the Add.
    }

    private void DrainIdle()
    {
        while (_idle.TryTake(out var handle)) handle.Dispose();
    }

    /// <summary>Frees the idle TurboJPEG handles; handles in use by running calls are freed when those calls end.</summary>
    public void Dispose()
    {
        _disposed = true;
        DrainIdle();
    }

    /// <summary>A TurboJPEG decompressor instance (tjhandle), destroyed with tjDestroy.</summary>
    private sealed class TjHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        private TjHandle() : base(ownsHandle: true) { }

        public static TjHandle Create()
        {
            var handle = new TjHandle();
            handle.SetHandle(Native.InitDecompress());
            if (handle.IsInvalid)
            {
                handle.SetHandleAsInvalid();
                throw new InvalidOperationException($"tjInitDecompress failed: {Native.ErrorString(0)}");
            }
            return handle;
        }

        protected override bool ReleaseHandle() => Native.Destroy(handle) == 0;
    }

    /// <summary>The library, loaded with <see cref="NativeLibrary.TryLoad(string, System.Reflection.Assembly, DllImportSearchPath?, out nint)"/>
    /// and bound through function pointers, so absence shows as <see cref="Loaded"/> = false rather than an exception.</summary>
    private static class Native
    {
        private const string SharedObjectName = "libturbojpeg.so.0";

        private static readonly delegate* unmanaged<nint> TjInitDecompress;
        private static readonly delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int> TjDecompressHeader3;
        private static readonly delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int> TjDecompress2;
        private static readonly delegate* unmanaged<nint, byte*> TjGetErrorStr2;
        private static readonly delegate* unmanaged<nint, int> TjGetErrorCode;
        private static readonly delegate* unmanaged<nint, int> TjDestroy;

        public static bool Loaded { get; }
        public static string? FailureReason { get; }
        public static string? ConfigurationError { get; }
        public static string? LibraryName { get; }
        public static string? LibraryPath { get; }
        public static string? Version { get; }

        /// <summary>Where the library is looked for when <see cref="EnvironmentVariable"/> is unset: the copy the build put
        /// next to the app, where a RID-agnostic NuGet consumer keeps it, then the platform's own search (system).</summary>
        private static string[] DefaultCandidates()
        {
            if (OperatingSystem.IsWindows()) return ["turbojpeg.dll"];
            if (OperatingSystem.IsMacOS()) return ["libturbojpeg.0.dylib", "libturbojpeg.dylib"];
            var app = AppContext.BaseDirectory;
            return [Path.Combine(app, SharedObjectName), Path.Combine(app, "runtimes", "linux-x64", "native", SharedObjectName), SharedObjectName];
        }

        static Native()
        {
            var setting = Environment.GetEnvironmentVariable(EnvironmentVariable)?.Trim();
            if (setting is "0" or "off" or "none")
            {
                FailureReason = $"disabled by {EnvironmentVariable}={setting}";
                return;
            }
            var explicitChoice = !string.IsNullOrEmpty(setting);
            string[] candidates = explicitChoice ? [setting!] : DefaultCandidates();
            nint library = 0;
            string? name = null;
            foreach (var candidate in candidates)
            {
                // A full path that does not exist is skipped without a dlopen (the bundled copy of a build that has none).
                if (Path.IsPathFullyQualified(candidate) && !File.Exists(candidate)) continue;
                if (NativeLibrary.TryLoad(candidate, typeof(TurboJpegDecoder).Assembly, null, out library)) { name = candidate; break; }
            }
            if (name is null)
            {
                FailureReason = explicitChoice
                    ? $"{EnvironmentVariable}={setting}: {(File.Exists(setting) ? "the file is not a loadable libturbojpeg for this machine" : "no such file")}"
                    : $"{SharedObjectName} is neither next to the app ({AppContext.BaseDirectory}; every FeatureOnnx build ships it there, so the app folder was copied without it) nor installed (Debian/Ubuntu: apt-get install libturbojpeg0)";
                if (explicitChoice)
                    ConfigurationError = $"{FailureReason}. Unset {EnvironmentVariable} to use the libjpeg-turbo shipped with FeatureOnnx, point it at a libturbojpeg.so.0, or set it to 'off' to decode JPEG with ImageSharp (not PIL-exact).";
                return;
            }
            var missing = new List<string>();
            nint Export(string symbol)
            {
                if (NativeLibrary.TryGetExport(library, symbol, out var address)) return address;
                missing.Add(symbol);
                return 0;
            }
            TjInitDecompress = (delegate* unmanaged<nint>)Export("tjInitDecompress");
            TjDecompressHeader3 = (delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int>)Export("tjDecompressHeader3");
            TjDecompress2 = (delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int>)Export("tjDecompress2");
            TjGetErrorStr2 = (delegate* unmanaged<nint, byte*>)Export("tjGetErrorStr2");
            TjGetErrorCode = (delegate* unmanaged<nint, int>)Export("tjGetErrorCode");
            TjDestroy = (delegate* unmanaged<nint, int>)Export("tjDestroy");
            if (missing.Count > 0)
            {
                FailureReason = $"{name} lacks {string.Join(", ", missing)} (TurboJPEG 2.0 or later is needed)";
                if (explicitChoice) ConfigurationError = $"{EnvironmentVariable}={setting}: {FailureReason}.";
                NativeLibrary.Free(library);
                return;
            }
            LibraryName = name;
            LibraryPath = Path.IsPathFullyQualified(name) ? name : LoadedPath(Path.GetFileName(name));
            Version = LibraryPath is null ? null : VersionOf(LibraryPath);
            Loaded = true;
        }

        /// <summary>The file the dynamic loader mapped for <paramref name="fileName"/> (Linux: /proc/self/maps).</summary>
        private static string? LoadedPath(string fileName)
        {
            try
            {
                if (!File.Exists("/proc/self/maps")) return null;
                foreach (var line in File.ReadLines("/proc/self/maps"))
                {
                    var slash = line.IndexOf('/');
                    if (slash < 0) continue;
                    var path = line[slash..];
                    var file = Path.GetFileName(path);
                    if (file == fileName || file.StartsWith(fileName + ".", StringComparison.Ordinal)) return path;
                }
            }
            catch (IOException) { }
            return null;
        }

        /// <summary>libjpeg-turbo embeds "libjpeg-turbo version X.Y.Z (build ...)" in its banner; TurboJPEG 2.x has no
        /// version function.</summary>
        private static string? VersionOf(string path)
        {
            try
            {
                var bytes = File.ReadAllBytes(path);
                var marker = "libjpeg-turbo version "u8;
                var at = bytes.AsSpan().IndexOf(marker);
                if (at < 0) return null;
                var start = at + marker.Length;
                var end = start;
                while (end < bytes.Length && end - start < 32 && bytes[end] is not (byte)' ' and not 0) end++;
                return System.Text.Encoding.ASCII.GetString(bytes, start, end - start);
            }
            catch (IOException) { return null; }
            catch (UnauthorizedAccessException) { return null; }
        }

        public static nint InitDecompress() => TjInitDecompress();

        public static int DecompressHeader3(nint tj, byte* jpeg, CULong size, int* width, int* height, int* subsampling, int* colorspace) =>
            TjDecompressHeader3(tj, jpeg, size, width, height, subsampling, colorspace);

        public static int Decompress2(nint tj, byte* jpeg, CULong size, byte* dst, int width, int pitch, int height, int pixelFormat, int flags) =>
            TjDecompress2(tj, jpeg, size, dst, width, pitch, height, pixelFormat, flags);

        public static int GetErrorCode(nint tj) => TjGetErrorCode(tj);

        public static int Destroy(nint tj) => TjDestroy(tj);

        /// <summary>tjGetErrorStr2: the instance's own error, else the calling thread's last libjpeg message.</summary>
        public static string ErrorString(nint tj) => Marshal.PtrToStringUTF8((nint)TjGetErrorStr2(tj))?.Trim() ?? "unknown error";
    }
}
