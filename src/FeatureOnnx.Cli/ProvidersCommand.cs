using System.CommandLine;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx providers</c>: which execution providers can run here, and what CUDA lacks.</summary>
internal static class ProvidersCommand
{
    public static Command Create()
    {
        var device = new Option<int>("--device") { Description = "CUDA device to try.", DefaultValueFactory = _ => 0 };
        var command = new Command("providers", "List ONNX Runtime's execution providers and diagnose CUDA: driver, each CUDA/cuDNN library found or missing, and the fix.")
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
            foreach (var lib in r.CudaLibraries)
                Console.WriteLine($"        {(lib.Found ? "found  " : "MISSING")} {lib.Name,-20} {lib.Purpose}");
            Console.WriteLine($"        LD_LIBRARY_PATH={Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? ""}");
            return 0;
        }));
        return command;
    }
}
