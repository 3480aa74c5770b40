using System.Runtime.InteropServices;
using FeatureOnnx.Cuda;
using FeatureOnnx.Models;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Runtime;

/// <summary>One shared library the CUDA provider needs, and whether this process can load it.</summary>
/// <param name="Name">The soname looked for.</param>
/// <param name="Purpose">What it is, for humans.</param>
/// <param name="Found">Whether <c>dlopen</c> succeeds with the current LD_LIBRARY_PATH.</param>
public sealed record NativeLibraryStatus(string Name, string Purpose, bool Found);

/// <summary>What <c>featureonnx providers</c> reports.</summary>
/// <param name="OrtVersion">ONNX Runtime version.</param>
/// <param name="CompiledProviders">Providers this ONNX Runtime build was compiled with.</param>
/// <param name="CudaProviderLibrary">Path of libonnxruntime_providers_cuda.so next to the app, or null (CPU-only build).</param>
/// <param name="CudaLibraries">The CUDA/cuDNN libraries it needs, found or missing.</param>
/// <param name="CudaUsable">Whether a CUDA session ran the probe model and gave its exact output (null: not tried because a piece is missing).</param>
/// <param name="CudaError">Why not, in one line with the fix.</param>
public sealed record ProviderReport(
    string OrtVersion,
    IReadOnlyList<string> CompiledProviders,
    string? CudaProviderLibrary,
    IReadOnlyList<NativeLibraryStatus> CudaLibraries,
    bool? CudaUsable,
    string? CudaError)
{
    /// <summary>CUDA version the NVIDIA driver supports, e.g. "13.0"; null without a driver.</summary>
    public string? DriverCudaVersion { get; init; }

    /// <summary>The devices the driver sees (empty without a driver or device).</summary>
    public IReadOnlyList<CudaDeviceInfo> CudaDevices { get; init; } = [];

    /// <summary>The loaded cuDNN's version, e.g. "9.10.2"; null when libcudnn.so.9 does not load.</summary>
    public string? CudnnVersion { get; init; }

    /// <summary>Device memory in use (all processes) on the probed device after the probe ran; null when not measured.</summary>
    public long? DeviceMemoryInUseBytes { get; init; }
}

/// <summary>
/// Explains which execution providers can run here and, for CUDA, exactly which piece is missing or broken: ONNX
/// Runtime's own error says "Failed to load shared library" or "CUDA failure 100" and nothing more, which is the
/// most reported complaint about it. Checks, in order: the driver library, the driver itself (does it start, does
/// it see the device asked for, is it new enough for CUDA 13, is the GPU one CUDA 13 supports), then the CUDA and
/// cuDNN libraries; <see cref="Diagnose"/> then runs a one-convolution model on CUDA.
/// </summary>
public static class ProviderDiagnostics
{
    /// <summary>What ONNX Runtime 1.31's CUDA 13 provider links (readelf NEEDED) and loads at session creation (cuDNN 9).</summary>
    public static IReadOnlyList<(string Name, string Purpose)> CudaDependencies { get; } =
    [
        ("libcuda.so.1", "NVIDIA driver"),
        ("libcudart.so.13", "CUDA 13 runtime"),
        ("libcublasLt.so.13", "cuBLASLt (CUDA 13)"),
        ("libcublas.so.13", "cuBLAS (CUDA 13)"),
        ("libcurand.so.10", "cuRAND"),
        ("libcudnn.so.9", "cuDNN 9"),
    ];

    /// <summary>Checks every CUDA dependency with dlopen, asks the driver about its devices and, when nothing is missing, runs the probe model on CUDA.</summary>
    public static ProviderReport Diagnose(int deviceId = 0)
    {
        var env = OrtEnv.Instance();
        var compiled = env.GetAvailableProviders();
        var providerLibrary = new[]
            {
                Path.Combine(AppContext.BaseDirectory, "libonnxruntime_providers_cuda.so"),
                Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libonnxruntime_providers_cuda.so"),
            }.FirstOrDefault(File.Exists);
        var libraries = LibraryStatus();
        var driver = libraries[0].Found ? DriverState.Read() : null;
        bool? usable = null;
        long? inUse = null;
        // A CPU-flavour build can never run CUDA, whatever the machine has: that comes first.
        var error = providerLibrary is null || !compiled.Contains("CUDAExecutionProvider")
            ? "this build has no CUDA provider (CPU flavour): build or publish with -p:OrtFlavor=cuda."
            : FirstBlocker(deviceId, libraries, driver);
        if (error is null)
        {
            error = Probe(deviceId);
            usable = error is null;
            if (CudaRuntime.TryLoad(out _)?.Query(deviceId, out _) is { } memory) inUse = memory.Used;
        }
        return new ProviderReport(env.GetVersionString(), compiled, providerLibrary, libraries, usable, error)
        {
            DriverCudaVersion = driver?.Version is { } v ? CudaDriver.FormatVersion(v) : null,
            CudaDevices = driver?.Devices ?? [],
            CudnnVersion = CudnnVersion(),
            DeviceMemoryInUseBytes = inUse,
        };
    }

    /// <summary>
    /// The first reason CUDA cannot run on <paramref name="deviceId"/> before ONNX Runtime is asked (a library that
    /// does not load, a driver that does not start, sees no such device, is too old for CUDA 13, or a GPU older than
    /// CUDA 13 supports), explained with its fix; null when every check passes.
    /// </summary>
    public static string? WhyCudaCannotRun(int deviceId = 0)
    {
        var libraries = LibraryStatus();
        return FirstBlocker(deviceId, libraries, libraries[0].Found ? DriverState.Read() : null);
    }

    private static List<NativeLibraryStatus> LibraryStatus() =>
        CudaDependencies.Select(d => new NativeLibraryStatus(d.Name, d.Purpose, CanLoad(d.Name))).ToList();

    /// <summary>What the driver said, asked once (<paramref name="Devices"/> null: it did not start or sees no device).</summary>
    private sealed record DriverState(string? LoadFailure, IReadOnlyList<CudaDeviceInfo>? Devices, int Error, string ErrorName, int? Version)
    {
        public static DriverState Read()
        {
            var driver = CudaDriver.TryLoad(out var reason);
            if (driver is null) return new DriverState(reason, null, 0, "", null);
            var devices = driver.Devices(out var error, out var errorName);
            return new DriverState(null, devices, error, errorName, driver.DriverVersion());
        }
    }

    /// <summary>The libraries in <see cref="CudaDependencies"/> order, the driver's state checked right after libcuda.so.1.</summary>
    private static string? FirstBlocker(int deviceId, IReadOnlyList<NativeLibraryStatus> libraries, DriverState? driver)
    {
        foreach (var library in libraries)
        {
            if (!library.Found) return MissingMessage(library.Name, library.Purpose);
            if (library.Name == "libcuda.so.1" && driver is not null && DriverProblem(driver, deviceId) is { } problem) return problem;
        }
        return null;
    }

    private static string? DriverProblem(DriverState driver, int deviceId)
    {
        if (driver.LoadFailure is { } reason) return $"the NVIDIA driver library is unusable: {reason}. Reinstall the NVIDIA driver.";
        var (devices, error, errorName) = (driver.Devices, driver.Error, driver.ErrorName);
        if (devices is null)
            return error == 100
                ? $"the NVIDIA driver is installed but sees no CUDA device (cuInit: {errorName}). Check nvidia-smi; in a container, pass the GPU in (docker run --gpus all, or a Kubernetes nvidia.com/gpu limit)."
                : $"the NVIDIA driver did not start (cuInit: {errorName}). Check nvidia-smi and dmesg; after a driver upgrade, reboot or reload the nvidia kernel module.";
        if (driver.Version is { } version && version < CudaDriver.RequiredCudaVersion)
            return $"the NVIDIA driver supports CUDA {CudaDriver.FormatVersion(version)}, and ONNX Runtime 1.31's CUDA provider needs CUDA {CudaDriver.FormatVersion(CudaDriver.RequiredCudaVersion)}: install NVIDIA driver 580 or newer.";
        if (deviceId < 0 || deviceId >= devices.Count)
            return $"there is no CUDA device {deviceId}: the driver sees {devices.Count} ({string.Join(", ", devices.Select(d => $"{d.Ordinal}: {d.Name}"))}). Use device 0{(devices.Count > 1 ? $"..{devices.Count - 1}" : "")} (SessionSettings.DeviceId).";
        var device = devices[deviceId];
        if (device.ComputeCapability < CudaDriver.MinimumComputeCapability)
            return $"CUDA device {deviceId} ({device.Name}) has compute capability {device.ComputeCapability}, and CUDA 13 (this ONNX Runtime's CUDA provider) supports {CudaDriver.MinimumComputeCapability} (Turing) and newer. Run it on the CPU.";
        return null;
    }

    /// <summary>Runs <see cref="ProviderProbeModel"/> on CUDA with CPU fallback of nodes disabled; null when its output is exact.</summary>
    private static string? Probe(int deviceId)
    {
        try
        {
            var settings = new SessionSettings { Provider = ExecutionProviderKind.Cuda, DeviceId = deviceId };
            using var options = FeatureSession.NewOptions(settings);
            options.AddSessionConfigEntry("session.disable_cpu_ep_fallback", "1");
            FeatureSession.AppendCuda(options, settings);
            using var session = new InferenceSession(ProviderProbeModel.Bytes(), options);
            using var input = OrtValue.CreateTensorValueFromMemory(ProviderProbeModel.Input.ToArray(), ProviderProbeModel.Shape.ToArray());
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, [ProviderProbeModel.InputName], [input], [ProviderProbeModel.OutputName]);
            var values = outputs[0].GetTensorDataAsSpan<float>().ToArray();
            return values.SequenceEqual(ProviderProbeModel.ExpectedOutput)
                ? null
                : $"the CUDA provider computed a 1x1 convolution wrongly ([{string.Join(", ", values)}] instead of [{string.Join(", ", ProviderProbeModel.ExpectedOutput)}]): check the CUDA and cuDNN installation.";
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            return ExecutionProviderException.Explain(e);
        }
    }

    private static string? CudnnVersion()
    {
        if (!NativeLibrary.TryLoad("libcudnn.so.9", out var handle)) return null;
        try
        {
            if (!NativeLibrary.TryGetExport(handle, "cudnnGetVersion", out var export)) return null;
            // cuDNN 9: CUDNN_VERSION = major * 10000 + minor * 100 + patch.
            var v = (long)Invoke(export);
            return $"{v / 10000}.{v % 10000 / 100}.{v % 100}";
        }
        finally
        {
            NativeLibrary.Free(handle);
        }

        static unsafe nuint Invoke(nint f) => ((delegate* unmanaged<nuint>)f)();
    }

    private static string MissingMessage(string name, string purpose) => name == "libcuda.so.1"
        ? "no NVIDIA driver (libcuda.so.1 not found): this machine has no usable GPU driver."
        : $"{name} ({purpose}) not found: install it (CUDA 13 toolkit or the nvidia-*-cu13 / nvidia-cudnn-cu13 wheels) and add its folder to LD_LIBRARY_PATH. 'featureonnx providers' lists every library.";

    private static bool CanLoad(string name)
    {
        if (!NativeLibrary.TryLoad(name, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }
}
