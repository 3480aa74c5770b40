using System.Runtime.InteropServices;
using System.Text;

namespace FeatureOnnx.Cuda;

/// <summary>One GPU as the NVIDIA driver reports it.</summary>
/// <param name="Ordinal">CUDA device number (<c>--provider cuda:N</c>).</param>
/// <param name="Name">Marketing name, e.g. "NVIDIA H200".</param>
/// <param name="ComputeCapability">Compute capability, e.g. 9.0 for Hopper.</param>
/// <param name="TotalMemoryBytes">Device memory.</param>
public sealed record CudaDeviceInfo(int Ordinal, string Name, Version ComputeCapability, long TotalMemoryBytes);

/// <summary>
/// The CUDA driver API (<c>libcuda.so.1</c>, installed with the NVIDIA driver): whether the driver starts, which CUDA
/// version it supports and which devices it sees. Asked before ONNX Runtime is, because ONNX Runtime reports all of
/// these as one "CUDA failure N" with a source location. Needs no CUDA toolkit and creates no context.
/// </summary>
internal sealed unsafe class CudaDriver
{
    /// <summary>CUDA version ONNX Runtime 1.31's CUDA provider is built with (cuDriverGetVersion form: 1000*major + 10*minor).</summary>
    public const int RequiredCudaVersion = 13000;

    /// <summary>Oldest compute capability CUDA 13 (and so this provider) supports: Turing.</summary>
    public static readonly Version MinimumComputeCapability = new(7, 5);

    private const int CudaErrorNoDevice = 100;
    private const int AttributeComputeCapabilityMajor = 75;
    private const int AttributeComputeCapabilityMinor = 76;

    private readonly delegate* unmanaged<uint, int> _init;
    private readonly delegate* unmanaged<int*, int> _driverGetVersion;
    private readonly delegate* unmanaged<int*, int> _deviceGetCount;
    private readonly delegate* unmanaged<int*, int, int> _deviceGet;
    private readonly delegate* unmanaged<byte*, int, int, int> _deviceGetName;
    private readonly delegate* unmanaged<nuint*, int, int> _deviceTotalMem;
    private readonly delegate* unmanaged<int*, int, int, int> _deviceGetAttribute;
    private readonly delegate* unmanaged<int, byte**, int> _getErrorName;

    private readonly nint _library;

    private CudaDriver(nint library)
    {
        _library = library;
        nint Export(string name) => NativeLibrary.GetExport(library, name);
        _init = (delegate* unmanaged<uint, int>)Export("cuInit");
        _driverGetVersion = (delegate* unmanaged<int*, int>)Export("cuDriverGetVersion");
        _deviceGetCount = (delegate* unmanaged<int*, int>)Export("cuDeviceGetCount");
        _deviceGet = (delegate* unmanaged<int*, int, int>)Export("cuDeviceGet");
        _deviceGetName = (delegate* unmanaged<byte*, int, int, int>)Export("cuDeviceGetName");
        _deviceTotalMem = (delegate* unmanaged<nuint*, int, int>)Export("cuDeviceTotalMem_v2");
        _deviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Export("cuDeviceGetAttribute");
        _getErrorName = (delegate* unmanaged<int, byte**, int>)Export("cuGetErrorName");
    }

    /// <summary>Binds <c>libcuda.so.1</c>; null with <paramref name="reason"/> where it is absent or lacks an entry point.</summary>
    public static CudaDriver? TryLoad(out string reason) => TryLoad("libcuda.so.1", out reason);

    /// <summary>Binds the driver library at <paramref name="library"/> (tests load a fake by path).</summary>
    internal static CudaDriver? TryLoad(string library, out string reason)
    {
        if (!NativeLibrary.TryLoad(library, out var handle))
        {
            reason = $"{library} not loadable";
            return null;
        }
        try
        {
            reason = "";
            return new CudaDriver(handle);
        }
        catch (EntryPointNotFoundException e)
        {
            reason = $"{library} lacks a driver API entry point ({e.Message})";
            return null;
        }
    }

    /// <summary>CUDA version the driver supports (e.g. 13000 for 13.0), or null when it cannot say.</summary>
    public int? DriverVersion()
    {
        int version;
        return _driverGetVersion(&version) == 0 && version > 0 ? version : null;
    }

    /// <summary>
    /// Starts the driver and lists its devices. Null with a result code (<c>CUresult</c>) and its name when the driver
    /// does not start or sees no device.
    /// </summary>
    public IReadOnlyList<CudaDeviceInfo>? Devices(out int error, out string errorName)
    {
        int count = 0;
        error = _init(0);
        if (error == 0) error = _deviceGetCount(&count);
        if (error == 0 && count == 0) error = CudaErrorNoDevice;
        errorName = error == 0 ? "" : ErrorName(error);
        if (error != 0) return null;
        var devices = new List<CudaDeviceInfo>(count);
        var buffer = stackalloc byte[256];
        for (var ordinal = 0; ordinal < count; ordinal++)
        {
            int handle, major = 0, minor = 0;
            nuint bytes = 0;
            var name = "unknown";
            if (_deviceGet(&handle, ordinal) == 0)
            {
                if (_deviceGetName(buffer, 256, handle) == 0) name = Encoding.UTF8.GetString(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(buffer));
                _deviceGetAttribute(&major, AttributeComputeCapabilityMajor, handle);
                _deviceGetAttribute(&minor, AttributeComputeCapabilityMinor, handle);
                _deviceTotalMem(&bytes, handle);
            }
            devices.Add(new CudaDeviceInfo(ordinal, name, new Version(major, minor), (long)bytes));
        }
        return devices;
    }

    /// <summary>
    /// The primary context of device <paramref name="ordinal"/> for memory, streams, modules and launches (the GPU
    /// decoder's resize kernel). Starts the driver if <see cref="Devices"/> has not.
    /// </summary>
    /// <exception cref="CudaException">The driver does not start, the device does not exist, or the driver lacks an entry point.</exception>
    public CudaDevice OpenDevice(int ordinal)
    {
        var devices = Devices(out _, out var errorName) ?? throw new CudaException($"the CUDA driver does not start ({errorName}).");
        if (ordinal < 0 || ordinal >= devices.Count) throw new CudaException($"CUDA device {ordinal} does not exist ({devices.Count} device(s)).");
        try
        {
            return new CudaDevice(_library, ordinal, devices[ordinal].ComputeCapability, ErrorName);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new CudaException($"libcuda.so.1 lacks a driver API entry point ({e.Message}).");
        }
    }

    /// <summary>Formats a cuDriverGetVersion number: 13000 -> "13.0", 12040 -> "12.4".</summary>
    public static string FormatVersion(int version) => $"{version / 1000}.{version % 1000 / 10}";

    private string ErrorName(int error)
    {
        byte* name = null;
        return _getErrorName(error, &name) == 0 && name is not null
            ? Marshal.PtrToStringUTF8((nint)name) ?? $"CUresult {error}"
            : $"CUresult {error}";
    }
}
