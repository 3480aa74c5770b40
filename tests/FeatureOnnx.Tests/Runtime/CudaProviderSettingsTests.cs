using System.CommandLine;
using FeatureOnnx.Cli;
using FeatureOnnx.Models;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Runtime;

[Trait("Category", TestCategory.Fast)]
public sealed class CudaProviderSettingsTests
{
    [Fact]
    public void Parses_the_options_that_matter()
    {
        var s = CudaProviderSettings.Parse("prefer_nhwc=1, cudnn_conv_algo_search=heuristic,enable_cuda_graph=true,gpu_mem_limit=8G,use_tf32=0");
        Assert.Equal(CudnnConvAlgoSearch.Heuristic, s.ConvAlgoSearch);
        Assert.True(s.PreferNhwc);
        Assert.True(s.EnableCudaGraph);
        Assert.Equal(8L << 30, s.MemoryLimitBytes);
        Assert.False(s.UseTf32);
        var options = s.ToProviderOptions(deviceId: 1);
        Assert.Equal("HEURISTIC", options["cudnn_conv_algo_search"]);
        Assert.Equal("1", options["prefer_nhwc"]);
        Assert.Equal("1", options["enable_cuda_graph"]);
        Assert.Equal("8589934592", options["gpu_mem_limit"]);
        Assert.Equal("0", options["use_tf32"]);
        Assert.Equal("1", options["device_id"]);
        // What Parse reads, ToString writes back.
        Assert.Equal(s.ToOptions(), CudaProviderSettings.Parse(s.ToString()).ToOptions());
    }

    [Fact]
    public void Unset_options_keep_onnx_runtimes_defaults_and_other_keys_pass_through()
    {
        var none = CudaProviderSettings.Parse(null);
        Assert.True(none.IsDefault);
        Assert.Equal("", none.ToString());
        Assert.Equal(["device_id"], none.ToProviderOptions(0).Keys);
        var extra = CudaProviderSettings.Parse("arena_extend_strategy=kSameAsRequested");
        Assert.Equal("kSameAsRequested", extra.ToProviderOptions(0)["arena_extend_strategy"]);
        Assert.Null(extra.PreferNhwc);
    }

    [Theory]
    [InlineData("prefer_nhwc", "write KEY=VALUE")]
    [InlineData("prefer_nhwc=yes", "use 1 or 0")]
    [InlineData("cudnn_conv_algo_search=FASTEST", "EXHAUSTIVE, HEURISTIC or DEFAULT")]
    [InlineData("cudnn_conv_algo_search=1", "EXHAUSTIVE, HEURISTIC or DEFAULT")]
    [InlineData("gpu_mem_limit=-1", "positive number of bytes")]
    [InlineData("gpu_mem_limit=8X", "positive number of bytes")]
    [InlineData("device_id=1", "SessionSettings.DeviceId")]
    public void Bad_options_are_refused_with_the_fix(string text, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => CudaProviderSettings.Parse(text));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Extract_refuses_bad_cuda_options_before_running()
    {
        using var dir = new Fixtures.TempDir();
        var root = new RootCommand("test");
        foreach (var command in CommandSet.All()) root.Subcommands.Add(command);
        Assert.Equal(1, root.Parse(["extract", Fixtures.PathOf("photos", "opencv_apple.jpg"), "-o", dir.Path, "--cuda-options", "gpu_mem_limit=lots"]).Invoke());
        Assert.False(File.Exists(dir.File("run.json")));
    }

    [SkippableFact]
    public void Cuda_options_keep_the_strict_failure_and_the_fallback()
    {
        Skip.If(ProviderDiagnostics.WhyCudaCannotRun() is null, "CUDA libraries load here: the failure path is not testable");
        var model = PreparedModel.Build(new ModelCatalog().Resolve("resnet18"), ["layer1"]);
        var settings = new SessionSettings { Provider = ExecutionProviderKind.Cuda, Cuda = CudaProviderSettings.Parse("prefer_nhwc=1,cudnn_conv_algo_search=HEURISTIC") };
        Assert.Contains("SessionSettings.FallbackToCpu", Assert.Throws<ExecutionProviderException>(() => new FeatureSession(model, settings)).Message);
        using var session = new FeatureSession(model, settings with { FallbackToCpu = true });
        Assert.Equal(ExecutionProviderKind.Cpu, session.Provider);
        Assert.NotNull(session.Fallback);
    }
}
