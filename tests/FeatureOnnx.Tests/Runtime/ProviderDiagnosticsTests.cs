using FeatureOnnx.Models;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Runtime;

[Trait("Category", TestCategory.Fast)]
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
        Assert.Contains("Set SessionSettings.FallbackToCpu", e.Message); // the CLI says --fallback cpu (CliErrorsTests)
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

    // ONNX Runtime 1.31's messages as printed (the first captured from its real CUDA provider over fixtures/cuda-stub).
    private const string NoDeviceMessage = "[ErrorCode:Fail] /onnxruntime_src/onnxruntime/core/providers/cuda/cuda_execution_provider_info.cc:63 static onnxruntime::CUDAExecutionProviderInfo onnxruntime::CUDAExecutionProviderInfo::FromProviderOptions(const onnxruntime::ProviderOptions&) [ONNXRuntimeError] : 1 : FAIL : provider_options_utils.h:187 Parse Failed to parse provider option \"device_id\": CUDA failure 100: no CUDA-capable device is detected ; GPU=-1 ; hostname=vm ; file=/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_execution_provider_info.cc ; line=70 ; expr=cudaGetDeviceCount(&num_devices); ";

    [Theory]
    [InlineData(NoDeviceMessage, "CUDA error 100 (no CUDA-capable device is detected) in cudaGetDeviceCount: no CUDA device is visible")]
    [InlineData("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : CUDA failure 2: out of memory ; GPU=0 ; hostname=h ; file=cuda_allocator.cc ; line=47 ; expr=cudaMalloc((void**)&p, size);",
        "CUDA error 2 (out of memory) in cudaMalloc: the device is out of memory: lower the batch size")]
    [InlineData("[ONNXRuntimeError] : 1 : FAIL : CUDNN failure 4: CUDNN_STATUS_INTERNAL_ERROR ; GPU=0 ; hostname=h ; file=cuda_execution_provider.cc ; line=182 ; expr=cudnnCreate(&cudnn_handle_);",
        "CUDNN error 4 (CUDNN_STATUS_INTERNAL_ERROR) in cudnnCreate: check the cuDNN 9")]
    public void Cuda_failures_become_one_line_naming_the_call_and_the_fix(string message, string expected)
    {
        var e = new Exception(message);
        Assert.True(ExecutionProviderException.IsCudaFailure(e));
        Assert.StartsWith(expected, ExecutionProviderException.Explain(e));
        Assert.DoesNotContain("onnxruntime_src", ExecutionProviderException.Explain(e));
    }

    [Fact]
    public void A_model_error_is_not_taken_for_a_cuda_failure()
    {
        var e = new Exception("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from x.onnx failed:Protobuf parsing failed.");
        Assert.False(ExecutionProviderException.IsCudaFailure(e));
    }
}
