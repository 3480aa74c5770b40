using System.Runtime.InteropServices;

namespace FeatureOnnx.Cuda;

/// <summary>nvjpegStatus_t (nvjpeg.h, CUDA 13).</summary>
internal enum NvJpegStatus
{
    Success = 0,
    NotInitialized = 1,
    InvalidParameter = 2,
    BadJpeg = 3,
    JpegNotSupported = 4,
    AllocatorFailure = 5,
    ExecutionFailed = 6,
    ArchMismatch = 7,
    InternalError = 8,
    ImplementationNotSupported = 9,
    IncompleteBitstream = 10,
}

/// <summary>nvjpegBackend_t: which decoder a handle drives.</summary>
internal enum NvJpegBackend
{
    Default = 0,
    Hybrid = 1,
    GpuHybrid = 2,
    Hardware = 3,
    GpuHybridDevice = 4,
    HardwareDevice = 5,
    LosslessJpeg = 6,
}

/// <summary>nvjpegOutputFormat_t.</summary>
internal enum NvJpegOutputFormat
{
    Unchanged = 0,
    Yuv = 1,
    Y = 2,
    Rgb = 3,
    Bgr = 4,
    /// <summary>Interleaved RGB in channel 0, pitch 0.</summary>
    Rgbi = 5,
    Bgri = 6,
}

/// <summary>nvjpegChromaSubsampling_t.</summary>
internal enum NvJpegChromaSubsampling
{
    Unknown = -1,
    Css444 = 0,
    Css422 = 1,
    Css420 = 2,
    Css440 = 3,
    Css411 = 4,
    Css410 = 5,
    Gray = 6,
    Css410V = 7,
}

/// <summary>nvjpegImage_t: up to four planes, each a device pointer and a pitch in bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NvJpegImage
{
    /// <summary>unsigned char *channel[NVJPEG_MAX_COMPONENT].</summary>
    public fixed ulong Channel[4];

    /// <summary>size_t pitch[NVJPEG_MAX_COMPONENT].</summary>
    public fixed ulong Pitch[4];

    /// <summary>Interleaved output (RGBI) at <paramref name="pointer"/> with <paramref name="pitch"/> bytes per row.</summary>
    public static NvJpegImage Interleaved(nint pointer, long pitch)
    {
        var image = default(NvJpegImage);
        image.Channel[0] = (ulong)pointer;
        image.Pitch[0] = (ulong)pitch;
        return image;
    }
}

/// <summary>What nvjpegGetImageInfo reports of one JPEG.</summary>
internal readonly record struct NvJpegImageInfo(int Components, NvJpegChromaSubsampling Subsampling, int Width, int Height);

/// <summary>An nvJPEG call failed; <see cref="Status"/> is its nvjpegStatus_t, named in the message.</summary>
internal sealed class NvJpegException(string call, NvJpegStatus status)
    : Exception($"{call} failed with {NvJpegLibrary.StatusName(status)}")
{
    /// <summary>The status returned.</summary>
    public NvJpegStatus Status { get; } = status;
}

/// <summary>
/// nvJPEG (<c>libnvjpeg.so.13</c>, CUDA 13) through function pointers: library version, handles with a chosen
/// backend, JPEG states and streams, image info and batched decoding. Found by <see cref="CudaLibrarySearch"/>. Every
/// object it makes is a <see cref="SafeHandle"/>; it knows nothing of what the pixels are for.
/// </summary>
internal sealed unsafe class NvJpegLibrary
{
    /// <summary>The soname loaded.</summary>
    public const string FileName = "libnvjpeg.so.13";

    /// <summary>Names the file to load instead of searching.</summary>
    public const string EnvironmentVariable = "FEATUREONNX_NVJPEG";

    private readonly delegate* unmanaged<int, int*, int> _getProperty;
    private readonly delegate* unmanaged<int, void*, void*, uint, nint*, int> _createEx;
    internal readonly delegate* unmanaged<nint, int> Destroy;
    private readonly delegate* unmanaged<nint, nint*, int> _stateCreate;
    internal readonly delegate* unmanaged<nint, int> StateDestroy;
    private readonly delegate* unmanaged<nint, byte*, nuint, int*, int*, int*, int*, int> _getImageInfo;
    private readonly delegate* unmanaged<nint, nint, int, int, int, int> _batchedInitialize;
    private readonly delegate* unmanaged<nint, nint, byte**, nuint*, NvJpegImage*, nint, int> _decodeBatched;
    private readonly delegate* unmanaged<nint, nint*, int> _streamCreate;
    internal readonly delegate* unmanaged<nint, int> StreamDestroy;
    private readonly delegate* unmanaged<nint, byte*, nuint, nint, int> _streamParseHeader;
    private readonly delegate* unmanaged<nint, nint, int*, int> _batchedSupported;
    private readonly delegate* unmanaged<nint, uint*, uint*, int> _hardwareDecoderInfo; // null where absent

    private NvJpegLibrary(LoadedCudaLibrary library)
    {
        Library = library;
        nint Export(string name) => NativeLibrary.GetExport(library.Handle, name);
        _getProperty = (delegate* unmanaged<int, int*, int>)Export("nvjpegGetProperty");
        _createEx = (delegate* unmanaged<int, void*, void*, uint, nint*, int>)Export("nvjpegCreateEx");
        Destroy = (delegate* unmanaged<nint, int>)Export("nvjpegDestroy");
        _stateCreate = (delegate* unmanaged<nint, nint*, int>)Export("nvjpegJpegStateCreate");
        StateDestroy = (delegate* unmanaged<nint, int>)Export("nvjpegJpegStateDestroy");
        _getImageInfo = (delegate* unmanaged<nint, byte*, nuint, int*, int*, int*, int*, int>)Export("nvjpegGetImageInfo");
        _batchedInitialize = (delegate* unmanaged<nint, nint, int, int, int, int>)Export("nvjpegDecodeBatchedInitialize");
        _decodeBatched = (delegate* unmanaged<nint, nint, byte**, nuint*, NvJpegImage*, nint, int>)Export("nvjpegDecodeBatched");
        _streamCreate = (delegate* unmanaged<nint, nint*, int>)Export("nvjpegJpegStreamCreate");
        StreamDestroy = (delegate* unmanaged<nint, int>)Export("nvjpegJpegStreamDestroy");
        _streamParseHeader = (delegate* unmanaged<nint, byte*, nuint, nint, int>)Export("nvjpegJpegStreamParseHeader");
        _batchedSupported = (delegate* unmanaged<nint, nint, int*, int>)Export("nvjpegDecodeBatchedSupported");
        _hardwareDecoderInfo = NativeLibrary.TryGetExport(library.Handle, "nvjpegGetHardwareDecoderInfo", out var info)
            ? (delegate* unmanaged<nint, uint*, uint*, int>)info : null;
    }

    /// <summary>The file loaded and how it was found.</summary>
    public LoadedCudaLibrary Library { get; }

    /// <summary>Binds nvJPEG; null with <paramref name="reason"/> (where it looked, or the entry point it lacks).</summary>
    public static NvJpegLibrary? TryLoad(out string reason, Func<string, string?>? environment = null)
    {
        var library = CudaLibrarySearch.TryLoad(FileName, EnvironmentVariable, environment, out reason);
        if (library is null) return null;
        try
        {
            return new NvJpegLibrary(library);
        }
        catch (EntryPointNotFoundException e)
        {
            reason = $"{library.Path} lacks an nvJPEG entry point ({e.Message}): not the CUDA 13 nvJPEG";
            return null;
        }
    }

    /// <summary>nvjpegGetProperty's MAJOR_VERSION.MINOR_VERSION.PATCH_LEVEL.</summary>
    public Version Version()
    {
        int major, minor, patch;
        Check("nvjpegGetProperty", _getProperty(0, &major));
        Check("nvjpegGetProperty", _getProperty(1, &minor));
        Check("nvjpegGetProperty", _getProperty(2, &patch));
        return new Version(major, minor, patch);
    }

    /// <summary>
    /// A handle on <paramref name="backend"/>; when the hardware backend is asked for and the GPU has no JPEG engine
    /// (nvjpegCreateEx says NVJPEG_STATUS_ARCH_MISMATCH, or the library was built without it), the default backend,
    /// with <see cref="NvJpegHandle.HardwareUnavailable"/> saying why.
    /// </summary>
    /// <exception cref="NvJpegException">nvJPEG could not create a handle.</exception>
    public NvJpegHandle CreateHandle(NvJpegBackend backend)
    {
        nint handle;
        var status = (NvJpegStatus)_createEx((int)backend, null, null, 0, &handle);
        string? hardwareUnavailable = null;
        if (backend is NvJpegBackend.Hardware or NvJpegBackend.HardwareDevice
            && status is NvJpegStatus.ArchMismatch or NvJpegStatus.ImplementationNotSupported or NvJpegStatus.JpegNotSupported)
        {
            hardwareUnavailable = $"nvjpegCreateEx({BackendName(backend)}) returned {StatusName(status)}";
            backend = NvJpegBackend.Default;
            status = (NvJpegStatus)_createEx((int)backend, null, null, 0, &handle);
        }
        Check($"nvjpegCreateEx({BackendName(backend)})", status);
        return new NvJpegHandle(this, handle, backend, hardwareUnavailable);
    }

    internal NvJpegState CreateState(NvJpegHandle owner)
    {
        nint state;
        Check("nvjpegJpegStateCreate", _stateCreate(owner.DangerousGetHandle(), &state));
        return new NvJpegState(this, owner, state);
    }

    internal NvJpegStream CreateStream(NvJpegHandle owner)
    {
        nint stream;
        Check("nvjpegJpegStreamCreate", _streamCreate(owner.DangerousGetHandle(), &stream));
        return new NvJpegStream(this, owner, stream);
    }

    internal NvJpegStatus ImageInfo(NvJpegHandle handle, ReadOnlySpan<byte> data, out NvJpegImageInfo info)
    {
        int components, subsampling;
        var widths = stackalloc int[4];
        var heights = stackalloc int[4];
        NvJpegStatus status;
        fixed (byte* d = data) status = (NvJpegStatus)_getImageInfo(handle.DangerousGetHandle(), d, (nuint)data.Length, &components, &subsampling, widths, heights);
        info = status == NvJpegStatus.Success ? new NvJpegImageInfo(components, (NvJpegChromaSubsampling)subsampling, widths[0], heights[0]) : default;
        return status;
    }

    internal NvJpegStatus BatchedSupported(NvJpegHandle handle, NvJpegStream stream, ReadOnlySpan<byte> data, out bool supported)
    {
        supported = false;
        NvJpegStatus status;
        fixed (byte* d = data) status = (NvJpegStatus)_streamParseHeader(handle.DangerousGetHandle(), d, (nuint)data.Length, stream.DangerousGetHandle());
        if (status != NvJpegStatus.Success) return status;
        int isSupported = -1;
        status = (NvJpegStatus)_batchedSupported(handle.DangerousGetHandle(), stream.DangerousGetHandle(), &isSupported);
        supported = status == NvJpegStatus.Success && isSupported == 0; // 0 means supported (nvjpeg.h)
        return status;
    }

    internal void BatchedInitialize(NvJpegHandle handle, NvJpegState state, int batchSize, NvJpegOutputFormat format) =>
        Check("nvjpegDecodeBatchedInitialize", (NvJpegStatus)_batchedInitialize(handle.DangerousGetHandle(), state.DangerousGetHandle(), batchSize, 1, (int)format));

    internal NvJpegStatus DecodeBatched(NvJpegHandle handle, NvJpegState state, IReadOnlyList<ReadOnlyMemory<byte>> images, ReadOnlySpan<NvJpegImage> destinations, nint cudaStream)
    {
        if (destinations.Length < images.Count) throw new ArgumentException("fewer destinations than images", nameof(destinations));
        var pins = new System.Buffers.MemoryHandle[images.Count];
        var pointers = new nint[images.Count];
        var lengths = new nuint[images.Count];
        try
        {
            for (var i = 0; i < images.Count; i++)
            {
                pins[i] = images[i].Pin();
                pointers[i] = (nint)pins[i].Pointer;
                lengths[i] = (nuint)images[i].Length;
            }
            fixed (nint* p = pointers) fixed (nuint* l = lengths) fixed (NvJpegImage* d = destinations)
                return (NvJpegStatus)_decodeBatched(handle.DangerousGetHandle(), state.DangerousGetHandle(), (byte**)p, l, d, cudaStream);
        }
        finally
        {
            foreach (var pin in pins) pin.Dispose();
        }
    }

    internal (int Engines, int CoresPerEngine)? HardwareDecoderInfo(NvJpegHandle handle)
    {
        if (_hardwareDecoderInfo is null) return null;
        uint engines, cores;
        return (NvJpegStatus)_hardwareDecoderInfo(handle.DangerousGetHandle(), &engines, &cores) == NvJpegStatus.Success ? ((int)engines, (int)cores) : null;
    }

    /// <summary>The C name of a status: NVJPEG_STATUS_ARCH_MISMATCH.</summary>
    public static string StatusName(NvJpegStatus status) => status switch
    {
        NvJpegStatus.Success => "NVJPEG_STATUS_SUCCESS",
        NvJpegStatus.NotInitialized => "NVJPEG_STATUS_NOT_INITIALIZED",
        NvJpegStatus.InvalidParameter => "NVJPEG_STATUS_INVALID_PARAMETER",
        NvJpegStatus.BadJpeg => "NVJPEG_STATUS_BAD_JPEG",
        NvJpegStatus.JpegNotSupported => "NVJPEG_STATUS_JPEG_NOT_SUPPORTED",
        NvJpegStatus.AllocatorFailure => "NVJPEG_STATUS_ALLOCATOR_FAILURE",
        NvJpegStatus.ExecutionFailed => "NVJPEG_STATUS_EXECUTION_FAILED",
        NvJpegStatus.ArchMismatch => "NVJPEG_STATUS_ARCH_MISMATCH",
        NvJpegStatus.InternalError => "NVJPEG_STATUS_INTERNAL_ERROR",
        NvJpegStatus.ImplementationNotSupported => "NVJPEG_STATUS_IMPLEMENTATION_NOT_SUPPORTED",
        NvJpegStatus.IncompleteBitstream => "NVJPEG_STATUS_INCOMPLETE_BITSTREAM",
        _ => $"nvjpegStatus_t {(int)status}",
    };

    /// <summary>The C name of a backend: NVJPEG_BACKEND_HARDWARE.</summary>
    public static string BackendName(NvJpegBackend backend) => backend switch
    {
        NvJpegBackend.Default => "NVJPEG_BACKEND_DEFAULT",
        NvJpegBackend.Hybrid => "NVJPEG_BACKEND_HYBRID",
        NvJpegBackend.GpuHybrid => "NVJPEG_BACKEND_GPU_HYBRID",
        NvJpegBackend.Hardware => "NVJPEG_BACKEND_HARDWARE",
        NvJpegBackend.GpuHybridDevice => "NVJPEG_BACKEND_GPU_HYBRID_DEVICE",
        NvJpegBackend.HardwareDevice => "NVJPEG_BACKEND_HARDWARE_DEVICE",
        NvJpegBackend.LosslessJpeg => "NVJPEG_BACKEND_LOSSLESS_JPEG",
        _ => $"nvjpegBackend_t {(int)backend}",
    };

    internal static void Check(string call, NvJpegStatus status)
    {
        if (status != NvJpegStatus.Success) throw new NvJpegException(call, status);
    }

    internal static void Check(string call, int status) => Check(call, (NvJpegStatus)status);
}

/// <summary>An nvjpegHandle_t on one backend; destroyed on dispose (after every state and stream made from it).</summary>
internal sealed class NvJpegHandle : SafeHandle
{
    private readonly NvJpegLibrary _library;

    internal NvJpegHandle(NvJpegLibrary library, nint handle, NvJpegBackend backend, string? hardwareUnavailable) : base(0, ownsHandle: true)
    {
        _library = library;
        SetHandle(handle);
        Backend = backend;
        HardwareUnavailable = hardwareUnavailable;
    }

    /// <summary>The backend in use.</summary>
    public NvJpegBackend Backend { get; }

    /// <summary>Why the hardware backend that was asked for is not in use; null when it is, or was not asked for.</summary>
    public string? HardwareUnavailable { get; }

    /// <summary>The library the handle belongs to.</summary>
    public NvJpegLibrary Library => _library;

    /// <inheritdoc />
    public override bool IsInvalid => handle == 0;

    /// <summary>A JPEG state (decoder scratch) of this handle.</summary>
    public NvJpegState CreateState() => _library.CreateState(this);

    /// <summary>A parsed-stream object of this handle (for <see cref="BatchedSupported"/>).</summary>
    public NvJpegStream CreateStream() => _library.CreateStream(this);

    /// <summary>nvjpegGetImageInfo: components, chroma subsampling and the size of the first component.</summary>
    public NvJpegStatus ImageInfo(ReadOnlySpan<byte> jpeg, out NvJpegImageInfo info) => _library.ImageInfo(this, jpeg, out info);

    /// <summary>nvjpegJpegStreamParseHeader then nvjpegDecodeBatchedSupported: whether this handle's batched decode takes the JPEG.</summary>
    public NvJpegStatus BatchedSupported(NvJpegStream stream, ReadOnlySpan<byte> jpeg, out bool supported) => _library.BatchedSupported(this, stream, jpeg, out supported);

    /// <summary>Hardware JPEG engines and cores per engine (nvjpegGetHardwareDecoderInfo); null where the library or backend cannot say.</summary>
    public (int Engines, int CoresPerEngine)? HardwareDecoderInfo() => _library.HardwareDecoderInfo(this);

    /// <inheritdoc />
    protected override unsafe bool ReleaseHandle() => _library.Destroy(handle) == 0;
}

/// <summary>
/// An nvJPEG object made from an <see cref="NvJpegHandle"/> (a state, a stream): it holds a reference on the handle
/// from creation until it is destroyed, so the handle outlives it whatever order they are disposed in.
/// </summary>
internal abstract class NvJpegChildHandle : SafeHandle
{
    private protected NvJpegChildHandle(NvJpegLibrary library, NvJpegHandle owner, nint child) : base(0, ownsHandle: true)
    {
        Library = library;
        Owner = owner;
        var added = false;
        owner.DangerousAddRef(ref added);
        SetHandle(child);
    }

    private protected NvJpegLibrary Library { get; }

    private protected NvJpegHandle Owner { get; }

    /// <inheritdoc />
    public override bool IsInvalid => handle == 0;

    /// <summary>The nvJPEG destroy call of this kind of object; 0 is success.</summary>
    private protected abstract int Destroy(nint child);

    /// <inheritdoc />
    protected override bool ReleaseHandle()
    {
        var ok = Destroy(handle) == 0;
        Owner.DangerousRelease();
        return ok;
    }
}

/// <summary>An nvjpegJpegState_t; keeps its handle alive until it is destroyed.</summary>
internal sealed class NvJpegState : NvJpegChildHandle
{
    internal NvJpegState(NvJpegLibrary library, NvJpegHandle owner, nint state) : base(library, owner, state) { }

    /// <summary>nvjpegDecodeBatchedInitialize for batches of up to <paramref name="batchSize"/> images in <paramref name="format"/>.</summary>
    /// <exception cref="NvJpegException">nvJPEG refused.</exception>
    public void InitializeBatched(int batchSize, NvJpegOutputFormat format) => Library.BatchedInitialize(Owner, this, batchSize, format);

    /// <summary>nvjpegDecodeBatched of <paramref name="images"/> into <paramref name="destinations"/> on <paramref name="cudaStream"/>;
    /// one status for the whole batch (nvJPEG does not say which image failed).</summary>
    public NvJpegStatus DecodeBatched(IReadOnlyList<ReadOnlyMemory<byte>> images, ReadOnlySpan<NvJpegImage> destinations, nint cudaStream) =>
        Library.DecodeBatched(Owner, this, images, destinations, cudaStream);

    private protected override unsafe int Destroy(nint state) => Library.StateDestroy(state);
}

/// <summary>An nvjpegJpegStream_t; keeps its handle alive until it is destroyed.</summary>
internal sealed class NvJpegStream : NvJpegChildHandle
{
    internal NvJpegStream(NvJpegLibrary library, NvJpegHandle owner, nint stream) : base(library, owner, stream) { }

    private protected override unsafe int Destroy(nint stream) => Library.StreamDestroy(stream);
}
