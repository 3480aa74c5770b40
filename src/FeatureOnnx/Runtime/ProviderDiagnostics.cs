using System.Runtime.InteropServices;
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
/// <param name="CudaUsable">Whether a CUDA session could be created (null: not tried because a piece is missing).</param>
/// <param name="CudaError">Why not, in one line with the fix.</param>
public sealed record ProviderReport(
    string OrtVersion,
    IReadOnlyList<string> CompiledProviders,
    string? CudaProviderLibrary,
    IReadOnlyList<NativeLibraryStatus> CudaLibraries,
    bool? CudaUsable,
    string? CudaError);

/// <summary>
/// Explains which execution providers can run here and, for CUDA, exactly which piece is missing: ONNX Runtime's own
/// error says "Failed to load shared library" and nothing more, which is the most reported complaint about it.
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

    /// <summary>Checks every CUDA dependency with dlopen and, when all are present, tries to create a CUDA session.</summary>
    public static ProviderReport Diagnose(int deviceId = 0)
    {
        var env = OrtEnv.Instance();
        var compiled = env.GetAvailableProviders();
        var providerLibrary = new[]
            {
                Path.Combine(AppContext.BaseDirectory, "libonnxruntime_providers_cuda.so"),
                Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libonnxruntime_providers_cuda.so"),
            }.FirstOrDefault(File.Exists);
        var libraries = CudaDependencies.Select(d => new NativeLibraryStatus(d.Name, d.Purpose, CanLoad(d.Name))).ToList();
        bool? usable = null;
        string? error = null;
        if (providerLibrary is null || !compiled.Contains("CUDAExecutionProvider"))
            error = "this build has no CUDA provider (CPU flavour): build or publish with -p:OrtFlavor=cuda.";
        else if (libraries.FirstOrDefault(l => !l.Found) is { } missing)
            error = MissingMessage(missing);
        else
        {
            try
            {
                using var options = new SessionOptions();
                options.AppendExecutionProvider_CUDA(deviceId);
                usable = true;
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                usable = false;
                error = e.Message.Split('\n')[0];
            }
        }
        return new ProviderReport(env.GetVersionString(), compiled, providerLibrary, libraries, usable, error);
    }

    /// <summary>The first missing CUDA dependency, explained with its fix; null when all load.</summary>
    public static string? FirstMissingCudaPiece()
    {
        var missing = CudaDependencies.FirstOrDefault(d => !CanLoad(d.Name));
        return missing.Name is null ? null : MissingMessage(new NativeLibraryStatus(missing.Name, missing.Purpose, false));
    }

    private static string MissingMessage(NativeLibraryStatus missing) => missing.Name == "libcuda.so.1"
        ? "no NVIDIA driver (libcuda.so.1 not found): this machine has no usable GPU driver."
        : $"{missing.Name} ({missing.Purpose}) not found: install it (CUDA 13 toolkit or the nvidia-*-cu13 / nvidia-cudnn-cu13 wheels) and add its folder to LD_LIBRARY_PATH. 'featureonnx providers' lists every library.";

    private static bool CanLoad(string name)
    {
        if (!NativeLibrary.TryLoad(name, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }
}
