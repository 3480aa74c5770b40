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
            "the device. A missing or broken piece is named with its fix. Exit code 0 either way: 'cuda usable' is the verdict.")
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
            return 0;
        }));
        return command;
    }

    private static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
