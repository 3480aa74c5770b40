using System.Runtime.InteropServices;

namespace FeatureOnnx.Cuda;

/// <summary>
/// The few CUDA runtime calls ONNX Runtime's C# API lacks: device memory in use (<c>cudaMemGetInfo</c>, device-wide)
/// and copies between host and device memory (<c>cudaMemcpy</c>, for buffers this process allocated through the
/// session's CUDA allocator). Loads <c>libcudart.so.13</c>, the runtime ONNX Runtime's CUDA provider itself links, so
/// both work in the same primary context as its arena. Device names and the driver's view come from <see cref="CudaDriver"/>.
/// </summary>
internal sealed unsafe class CudaRuntime
{
    private const int HostToDevice = 1; // cudaMemcpyKind
    private const int DeviceToHost = 2;

    private readonly delegate* unmanaged<int, int> _setDevice;
    private readonly delegate* unmanaged<nuint*, nuint*, int> _memGetInfo;
    private readonly delegate* unmanaged<void*, void*, nuint, int, int> _memcpy;

    private CudaRuntime(nint setDevice, nint memGetInfo, nint memcpy)
    {
        _setDevice = (delegate* unmanaged<int, int>)setDevice;
        _memGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)memGetInfo;
        _memcpy = (delegate* unmanaged<void*, void*, nuint, int, int>)memcpy;
    }

    /// <summary>Binds the CUDA runtime; null with <paramref name="reason"/> where it is missing.</summary>
    public static CudaRuntime? TryLoad(out string reason)
    {
        if (!NativeLibrary.TryLoad("libcudart.so.13", out var cudart)) { reason = "libcudart.so.13 not loadable"; return null; }
        if (NativeLibrary.TryGetExport(cudart, "cudaSetDevice", out var setDevice)
            && NativeLibrary.TryGetExport(cudart, "cudaMemGetInfo", out var memGetInfo)
            && NativeLibrary.TryGetExport(cudart, "cudaMemcpy", out var memcpy))
        {
            reason = "";
            return new CudaRuntime(setDevice, memGetInfo, memcpy);
        }
        reason = "libcudart.so.13 lacks cudaSetDevice, cudaMemGetInfo or cudaMemcpy";
        return null;
    }

    /// <summary>Bytes in use on <paramref name="device"/> (all processes) and its capacity; null with the CUDA error code on failure.</summary>
    public (long Used, long Total)? Query(int device, out string error)
    {
        nuint free, total;
        var status = _setDevice(device);
        if (status == 0) status = _memGetInfo(&free, &total);
        else free = total = 0;
        error = status == 0 ? "" : $"cudaMemGetInfo failed (cudaError {status})";
        return status == 0 ? ((long)(total - free), (long)total) : null;
    }

    /// <summary>Copies host bytes into device memory of <paramref name="device"/> (synchronous).</summary>
    /// <exception cref="CudaException">The CUDA runtime refused the copy.</exception>
    public void CopyToDevice(int device, nint destination, ReadOnlySpan<byte> source)
    {
        fixed (byte* s = source) Copy(device, (void*)destination, s, source.Length, HostToDevice);
    }

    /// <summary>Copies device memory of <paramref name="device"/> into host bytes (synchronous).</summary>
    /// <exception cref="CudaException">The CUDA runtime refused the copy.</exception>
    public void CopyToHost(int device, Span<byte> destination, nint source)
    {
        fixed (byte* d = destination) Copy(device, d, (void*)source, destination.Length, DeviceToHost);
    }

    private void Copy(int device, void* destination, void* source, int bytes, int kind)
    {
        var status = _setDevice(device);
        if (status == 0) status = _memcpy(destination, source, (nuint)bytes, kind);
        if (status != 0)
            throw new CudaException($"cudaMemcpy of {bytes} bytes ({(kind == HostToDevice ? "host to device" : "device to host")}) on device {device} failed with cudaError {status}.");
    }
}
