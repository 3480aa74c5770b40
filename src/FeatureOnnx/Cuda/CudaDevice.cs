using System.Runtime.InteropServices;

namespace FeatureOnnx.Cuda;

/// <summary>
/// One GPU's primary context (the one the CUDA runtime, and so ONNX Runtime's CUDA provider, uses) through the driver
/// API: device memory, streams, modules and kernel launches. Made by <see cref="CudaDriver.OpenDevice"/>; makes the
/// context current on the calling thread at every call, so any thread may use it. Releases the context on dispose.
/// </summary>
internal sealed unsafe class CudaDevice : IDisposable
{
    private readonly delegate* unmanaged<nint*, int, int> _primaryRetain;
    private readonly delegate* unmanaged<int, int> _primaryRelease;
    private readonly delegate* unmanaged<nint, int> _ctxSetCurrent;
    private readonly delegate* unmanaged<ulong*, nuint, int> _memAlloc;
    internal readonly delegate* unmanaged<ulong, int> MemFree;
    private readonly delegate* unmanaged<ulong, void*, nuint, nint, int> _memcpyHtoDAsync;
    private readonly delegate* unmanaged<void*, ulong, nuint, int> _memcpyDtoH;
    private readonly delegate* unmanaged<nint*, uint, int> _streamCreate;
    internal readonly delegate* unmanaged<nint, int> StreamDestroy;
    private readonly delegate* unmanaged<nint, int> _streamSynchronize;
    private readonly delegate* unmanaged<nint*, void*, int> _moduleLoadData;
    internal readonly delegate* unmanaged<nint, int> ModuleUnload;
    private readonly delegate* unmanaged<nint*, nint, byte*, int> _moduleGetFunction;
    private readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> _launchKernel;
    private readonly Func<int, string> _errorName;
    private readonly nint _context;
    private bool _disposed;

    internal CudaDevice(nint library, int ordinal, Version computeCapability, Func<int, string> errorName)
    {
        nint Export(string name) => NativeLibrary.GetExport(library, name);
        _primaryRetain = (delegate* unmanaged<nint*, int, int>)Export("cuDevicePrimaryCtxRetain");
        _primaryRelease = (delegate* unmanaged<int, int>)Export("cuDevicePrimaryCtxRelease_v2");
        _ctxSetCurrent = (delegate* unmanaged<nint, int>)Export("cuCtxSetCurrent");
        _memAlloc = (delegate* unmanaged<ulong*, nuint, int>)Export("cuMemAlloc_v2");
        MemFree = (delegate* unmanaged<ulong, int>)Export("cuMemFree_v2");
        _memcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)Export("cuMemcpyHtoDAsync_v2");
        _memcpyDtoH = (delegate* unmanaged<void*, ulong, nuint, int>)Export("cuMemcpyDtoH_v2");
        _streamCreate = (delegate* unmanaged<nint*, uint, int>)Export("cuStreamCreate");
        StreamDestroy = (delegate* unmanaged<nint, int>)Export("cuStreamDestroy_v2");
        _streamSynchronize = (delegate* unmanaged<nint, int>)Export("cuStreamSynchronize");
        _moduleLoadData = (delegate* unmanaged<nint*, void*, int>)Export("cuModuleLoadData");
        ModuleUnload = (delegate* unmanaged<nint, int>)Export("cuModuleUnload");
        _moduleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)Export("cuModuleGetFunction");
        _launchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)Export("cuLaunchKernel");
        _errorName = errorName;
        Ordinal = ordinal;
        ComputeCapability = computeCapability;
        nint context;
        Check("cuDevicePrimaryCtxRetain", _primaryRetain(&context, ordinal));
        _context = context;
    }

    /// <summary>The device number.</summary>
    public int Ordinal { get; }

    /// <summary>Its compute capability (what NVRTC compiles for).</summary>
    public Version ComputeCapability { get; }

    /// <summary>Makes the primary context current on this thread.</summary>
    public void MakeCurrent() => Check("cuCtxSetCurrent", _ctxSetCurrent(_context));

    /// <summary>Allocates <paramref name="bytes"/> of device memory.</summary>
    public DeviceBuffer Allocate(long bytes)
    {
        MakeCurrent();
        ulong pointer;
        Check($"cuMemAlloc of {bytes} bytes", _memAlloc(&pointer, (nuint)Math.Max(bytes, 1)));
        return new DeviceBuffer(this, pointer, bytes);
    }

    /// <summary>Copies host bytes to device memory, ordered on <paramref name="stream"/> (synchronous for pageable memory).</summary>
    public void CopyToDevice(nint destination, ReadOnlySpan<byte> source, CudaStream? stream = null)
    {
        if (source.IsEmpty) return;
        MakeCurrent();
        fixed (byte* s = source) Check($"cuMemcpyHtoDAsync of {source.Length} bytes", _memcpyHtoDAsync((ulong)destination, s, (nuint)source.Length, stream?.DangerousGetHandle() ?? 0));
    }

    /// <inheritdoc cref="CopyToDevice(nint, ReadOnlySpan{byte}, CudaStream?)"/>
    public void CopyToDevice<T>(nint destination, ReadOnlySpan<T> source, CudaStream? stream = null) where T : unmanaged =>
        CopyToDevice(destination, MemoryMarshal.AsBytes(source), stream);

    /// <summary>Copies device memory to the host (synchronous).</summary>
    public void CopyToHost(Span<byte> destination, nint source)
    {
        MakeCurrent();
        fixed (byte* d = destination) Check($"cuMemcpyDtoH of {destination.Length} bytes", _memcpyDtoH(d, (ulong)source, (nuint)destination.Length));
    }

    /// <summary>A non-blocking stream of this context.</summary>
    public CudaStream CreateStream()
    {
        MakeCurrent();
        nint stream;
        Check("cuStreamCreate", _streamCreate(&stream, 1)); // CU_STREAM_NON_BLOCKING
        return new CudaStream(this, stream);
    }

    internal void Synchronize(CudaStream stream)
    {
        MakeCurrent();
        Check("cuStreamSynchronize", _streamSynchronize(stream.DangerousGetHandle()));
    }

    /// <summary>Loads a cubin or PTX image (cuModuleLoadData).</summary>
    public CudaModule LoadModule(byte[] image)
    {
        MakeCurrent();
        nint module;
        fixed (byte* i = image) Check("cuModuleLoadData", _moduleLoadData(&module, i));
        return new CudaModule(this, module);
    }

    internal nint GetFunction(CudaModule module, string name)
    {
        MakeCurrent();
        var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        nint function;
        fixed (byte* n = bytes) Check($"cuModuleGetFunction({name})", _moduleGetFunction(&function, module.DangerousGetHandle(), n));
        return function;
    }

    /// <summary>cuLaunchKernel: <paramref name="arguments"/> are the addresses of the argument values, in order.</summary>
    public void Launch(nint function, string name, (int X, int Y, int Z) grid, int blockWidth, CudaStream stream, ReadOnlySpan<nint> arguments)
    {
        MakeCurrent();
        fixed (nint* args = arguments)
            Check($"cuLaunchKernel({name}, grid {grid.X}x{grid.Y}x{grid.Z}, block {blockWidth})",
                _launchKernel(function, (uint)grid.X, (uint)grid.Y, (uint)grid.Z, (uint)blockWidth, 1, 1, 0, stream.DangerousGetHandle(), (void**)args, null));
    }

    internal void Check(string call, int result)
    {
        if (result != 0) throw new CudaException($"{call} on CUDA device {Ordinal} failed with {_errorName(result)}.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _primaryRelease(Ordinal);
    }
}

/// <summary>Device memory from cuMemAlloc; freed on dispose.</summary>
internal sealed unsafe class DeviceBuffer : SafeHandle
{
    private readonly CudaDevice _device;

    internal DeviceBuffer(CudaDevice device, ulong pointer, long bytes) : base(0, ownsHandle: true)
    {
        _device = device;
        SetHandle((nint)pointer);
        Bytes = bytes;
    }

    /// <summary>Size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>The device address.</summary>
    public nint Pointer => handle;

    /// <inheritdoc />
    public override bool IsInvalid => handle == 0;

    /// <inheritdoc />
    protected override bool ReleaseHandle()
    {
        _device.MakeCurrent();
        return _device.MemFree((ulong)handle) == 0;
    }
}

/// <summary>A CUDA stream; destroyed on dispose.</summary>
internal sealed unsafe class CudaStream : SafeHandle
{
    private readonly CudaDevice _device;

    internal CudaStream(CudaDevice device, nint stream) : base(0, ownsHandle: true)
    {
        _device = device;
        SetHandle(stream);
    }

    /// <inheritdoc />
    public override bool IsInvalid => handle == 0;

    /// <summary>Waits until all work queued on the stream is done.</summary>
    public void Synchronize() => _device.Synchronize(this);

    /// <inheritdoc />
    protected override bool ReleaseHandle() => _device.StreamDestroy(handle) == 0;
}

/// <summary>A loaded module; unloaded on dispose.</summary>
internal sealed unsafe class CudaModule : SafeHandle
{
    private readonly CudaDevice _device;

    internal CudaModule(CudaDevice device, nint module) : base(0, ownsHandle: true)
    {
        _device = device;
        SetHandle(module);
    }

    /// <inheritdoc />
    public override bool IsInvalid => handle == 0;

    /// <summary>A kernel of the module (an extern "C" name).</summary>
    public nint Function(string name) => _device.GetFunction(this, name);

    /// <inheritdoc />
    protected override bool ReleaseHandle() => _device.ModuleUnload(handle) == 0;
}
