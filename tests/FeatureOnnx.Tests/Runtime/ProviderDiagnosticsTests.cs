using FeatureOnnx.Models;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Runtime;

public sealed class ProviderDiagnosticsTests(ITestOutputHelper output)
{
    private static PreparedModel Model() => PreparedModel.Build(new ModelCatalog().Resolve("resnet18"), ["layer1"]);

    [Fact]
    public void Cpu_is_always_listed()
    {
        var report = ProviderDiagnostics.Diagnose();
        Assert.Contains("CPUExecutionProvider", report.CompiledProviders);
        Assert.StartsWith("1.31", report.OrtVersion);
        Assert.Equal(ProviderDiagnostics.CudaDependencies.Count, report.CudaLibraries.Count);
    }

    [SkippableFact]
    public void Cuda_request_without_cuda_fails_naming_the_missing_piece()
    {
        var missing = ProviderDiagnostics.WhyCudaCannotRun();
        Skip.If(missing is null, "every CUDA library loads here: this machine can run CUDA, so the failure path is not testable");
        var e = Assert.Throws<ExecutionProviderException>(() => new FeatureSession(Model(), new SessionSettings { Provider = ExecutionProviderKind.Cuda }));
        output.WriteLine(e.Message);
        Assert.Matches(@"lib(cuda|cudart|cublasLt|cublas|curand|cudnn)\.so", e.Message);
        Assert.Contains("--fallback cpu", e.Message);
    }

    [SkippableFact]
    public void Fallback_runs_on_the_cpu_and_says_why()
    {
        Skip.If(ProviderDiagnostics.WhyCudaCannotRun() is null, "CUDA is usable here; nothing to fall back from");
        using var session = new FeatureSession(Model(), new SessionSettings { Provider = ExecutionProviderKind.Cuda, FallbackToCpu = true });
        Assert.Equal(ExecutionProviderKind.Cpu, session.Provider);
        Assert.Contains("CUDA unavailable", session.Fallback);
        using var outputs = session.Run(new float[session.SlotLength], 1);
        Assert.Equal(new long[] { 1, 64, 56, 56 }, outputs.Shape("layer1"));
    }
}
