using System.Runtime.InteropServices;

namespace FeatureOnnx.Runtime;

/// <summary>
/// Device memory in use (total - free, from the CUDA runtime's <c>cudaMemGetInfo</c>, device-wide). Loads
/// <c>libcudart.so.13</c>, the runtime ONNX Runtime's CUDA provider uses, so the figures come from the same primary
/// context as its arena. Device names and the driver's view come from <see cref="CudaDriver"/>.
/// </summary>
internal sealed unsafe class CudaDeviceMemory
{
    private readonly delegate* unmanaged<int, int> _setDevice;
    private readonly delegate* unmanaged<nuint*, nuint*, int> _memGetInfo;

    private CudaDeviceMemory(nint setDevice, nint memGetInfo)
    {
        _setDevice = (delegate* unmanaged<int, int>)setDevice;
        _memGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)memGetInfo;
    }

    /// <summary>Binds the CUDA runtime; null with <paramref name="reason"/> where it is missing.</summary>
    public static CudaDeviceMemory? TryLoad(out string reason)
    {
        if (!NativeLibrary.TryLoad("libcudart.so.13", out var cudart)) { reason = "libcudart.so.13 not loadable"; return null; }
        if (NativeLibrary.TryGetExport(cudart, "cudaSetDevice", out var setDevice)
            && NativeLibrary.TryGetExport(cudart, "cudaMemGetInfo", out var memGetInfo))
        {
            reason = "";
            return new CudaDeviceMemory(setDevice, memGetInfo);
        }
        reason = "cudaMemGetInfo not exported";
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
}
