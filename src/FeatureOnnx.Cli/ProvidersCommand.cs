using System.CommandLine;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx providers</c>: which execution providers can run here, and what CUDA lacks.</summary>
internal static class ProvidersCommand
{
    public static Command Create()
    {
        var device = new Option<int>("--device") { Description = "CUDA device to try.", DefaultValueFactory = _ => 0 };
        var command = new Command("providers",
            "List ONNX Runtime's execution providers and diagnose CUDA: the driver (CUDA version it supports, devices with " +
            "compute capability and memory), each CUDA/cuDNN library found or missing, then a one-convolution model run on " +
            "the device; then the GPU decoder's nvJPEG (version, hardware JPEG engines) and NVRTC. A missing or broken piece is named with its fix. Exit code 0 either way: 'cuda usable' is the verdict.")
        {
            device,
        };
        command.SetAction(parse => CliErrors.Guard(() =>
        {
            var r = ProviderDiagnostics.Diagnose(parse.GetValue(device));
            Console.WriteLine($"ONNX Runtime {r.OrtVersion}; compiled providers: {string.Join(", ", r.CompiledProviders)}");
            Console.WriteLine("cpu     usable");
            Console.WriteLine($"cuda    {(r.CudaUsable == true ? "usable" : "NOT usable")}{(r.CudaError is null ? "" : ": " + r.CudaError)}");
            Console.WriteLine($"        provider library: {r.CudaProviderLibrary ?? "absent (CPU-only build)"}");
            Console.WriteLine($"        driver: {(r.DriverCudaVersion is { } v ? $"supports CUDA {v}" : "none")}");
            foreach (var d in r.CudaDevices)
                Console.WriteLine($"        device {d.Ordinal}: {d.Name}, compute capability {d.ComputeCapability}, {Gib(d.TotalMemoryBytes)} GiB" +
                    (d.Ordinal == parse.GetValue(device) && r.DeviceMemoryInUseBytes is { } used ? $" ({Gib(used)} GiB in use)" : ""));
            foreach (var lib in r.CudaLibraries)
                Console.WriteLine($"        {(lib.Found ? "found  " : "MISSING")} {lib.Name,-20} {lib.Purpose}" +
                    (lib.Name == "libcudnn.so.9" && r.CudnnVersion is { } cudnn ? $" (version {cudnn})" : ""));
            Console.WriteLine($"        LD_LIBRARY_PATH={Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? ""}");
            var g = FeatureOnnx.Preprocessing.GpuDecoderDiagnostics.Diagnose();
            Console.WriteLine($"gpu decoder (extract --decoder gpu): {(g.Usable && r.CudaUsable == true ? "usable" : "NOT usable")}" +
                              (g.Usable && r.CudaUsable != true ? ": needs the CUDA provider (above)" : ""));
            Console.WriteLine(g.NvJpegPath is null
                ? $"        MISSING nvJPEG: {g.NvJpegProblem}"
                : $"        nvJPEG {g.NvJpegVersion ?? "?"}: {g.NvJpegPath}" + (g.NvJpegProblem is { } p ? $"; {p}" : ""));
            if (g.HardwareBackend is { } hardware)
                Console.WriteLine(hardware
                    ? $"        hardware backend: available{(g.HardwareEngines is { } engines ? $" ({engines} JPEG engines)" : "")}"
                    : $"        hardware backend: unavailable ({g.HardwareUnavailable}): the default (CUDA) backend decodes");
            Console.WriteLine(g.NvrtcPath is null
                ? $"        MISSING NVRTC: {g.NvrtcProblem}"
                : $"        NVRTC {g.NvrtcVersion ?? "?"}: {g.NvrtcPath}" + (g.NvrtcProblem is { } q ? $"; {q}" : ""));
            return 0;
        }));
        return command;
    }

    private static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
