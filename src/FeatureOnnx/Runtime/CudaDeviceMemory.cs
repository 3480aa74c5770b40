using System.Runtime.InteropServices;
using System.Text;

namespace FeatureOnnx.Runtime;

/// <summary>
/// Device memory in use (total - free, from the CUDA runtime's <c>cudaMemGetInfo</c>, device-wide) and the device's
/// name (driver API <c>cuDeviceGetName</c>). Loads <c>libcudart.so.13</c> and <c>libcuda.so.1</c>, the libraries
/// ONNX Runtime's CUDA provider uses, so the figures come from the same primary context as its arena.
/// </summary>
internal sealed unsafe class CudaDeviceMemory
{
    private readonly delegate* unmanaged<int, int> _setDevice;
    private readonly delegate* unmanaged<nuint*, nuint*, int> _memGetInfo;
    private readonly delegate* unmanaged<uint, int> _cuInit;
    private readonly delegate* unmanaged<int*, int, int> _cuDeviceGet;
    private readonly delegate* unmanaged<byte*, int, int, int> _cuDeviceGetName;

    private CudaDeviceMemory(nint setDevice, nint memGetInfo, nint cuInit, nint deviceGet, nint deviceGetName)
    {
        _setDevice = (delegate* unmanaged<int, int>)setDevice;
        _memGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)memGetInfo;
        _cuInit = (delegate* unmanaged<uint, int>)cuInit;
        _cuDeviceGet = (delegate* unmanaged<int*, int, int>)deviceGet;
        _cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)deviceGetName;
    }

    /// <summary>Binds the CUDA runtime and driver; null with <paramref name="reason"/> where either is missing.</summary>
    public static CudaDeviceMemory? TryLoad(out string reason)
    {
        if (!NativeLibrary.TryLoad("libcudart.so.13", out var cudart)) { reason = "libcudart.so.13 not loadable"; return null; }
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var driver)) { reason = "libcuda.so.1 not loadable"; return null; }
        if (NativeLibrary.TryGetExport(cudart, "cudaSetDevice", out var setDevice)
            && NativeLibrary.TryGetExport(cudart, "cudaMemGetInfo", out var memGetInfo)
            && NativeLibrary.TryGetExport(driver, "cuInit", out var cuInit)
            && NativeLibrary.TryGetExport(driver, "cuDeviceGet", out var deviceGet)
            && NativeLibrary.TryGetExport(driver, "cuDeviceGetName", out var deviceGetName))
        {
            reason = "";
            return new CudaDeviceMemory(setDevice, memGetInfo, cuInit, deviceGet, deviceGetName);
        }
        reason = "cudaMemGetInfo or cuDeviceGetName not exported";
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

    /// <summary>The device's marketing name (e.g. "NVIDIA H200"), or null.</summary>
    public string? Name(int device)
    {
        int handle;
        if (_cuInit(0) != 0 || _cuDeviceGet(&handle, device) != 0) return null;
        var buffer = stackalloc byte[256];
        if (_cuDeviceGetName(buffer, 256, handle) != 0) return null;
        return Encoding.UTF8.GetString(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(buffer));
    }
}
