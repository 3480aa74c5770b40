using FeatureOnnx.Cli;
using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Tests.Cli;

/// <summary>The session options, declared once and bound to <see cref="SessionSettings"/> in one place, as every command reads them.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class SessionOptionGroupTests
{
    [Fact]
    public void The_group_binds_every_session_setting()
    {
        var group = new SessionOptionGroup("model");
        var command = new System.CommandLine.Command("test");
        group.AddTo(command);
        var parse = command.Parse(["--model", "m.json", "--provider", "cuda:1", "--fallback", "cpu", "--threads", "3", "--optimization", "extended", "--cuda-options", "prefer_nhwc=1", "--int8-kernels", "onnxruntime"]);
        Assert.Empty(parse.Errors);
        var settings = group.Bind(parse);
        Assert.Equal("m.json", parse.GetValue(group.Model));
        Assert.Equal((ExecutionProviderKind.Cuda, 1, true, 3, GraphOptimizationLevel.ORT_ENABLE_EXTENDED, (bool?)true, false),
            (settings.Provider, settings.DeviceId, settings.FallbackToCpu, settings.IntraOpThreads, settings.OptimizationLevel, settings.Cuda.PreferNhwc, settings.Int8ActivationKernels));
        var defaults = group.Bind(command.Parse([]));
        Assert.Equal(new SessionSettings { Cuda = defaults.Cuda }, defaults);
        Assert.True(defaults.Cuda.IsDefault);
    }

    [Fact]
    public void Extract_and_bench_declare_the_group_once()
    {
        var commands = CommandSet.All().Where(c => c.Name is "extract" or "bench").ToList();
        Assert.Equal(2, commands.Count);
        foreach (var option in new[] { "--model", "--threads", "--optimization", "--cuda-options", "--int8-kernels" })
            Assert.All(commands, c => Assert.Single(c.Options, o => o.Name == option));
        Assert.All(commands.Where(c => c.Name != "bench"), c => Assert.Single(c.Options, o => o.Name == "--provider"));
        Assert.DoesNotContain(commands.Single(c => c.Name == "bench").Options, o => o.Name is "--provider" or "--fallback"); // bench takes --providers
    }

    [Theory]
    [InlineData("tpu", "--provider tpu: use cpu or cuda[:DEVICE].")]
    [InlineData("cuda:x", "--provider cuda:x: the device must be a number, e.g. cuda:0.")]
    [InlineData("cpu:1", "--provider cpu:1: use cpu or cuda[:DEVICE].")]
    public void A_bad_provider_names_the_flag_and_the_text(string text, string message)
    {
        var group = new SessionOptionGroup("model");
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => SessionOptionGroup.ParseProvider(group.Provider!, text)).Message);
    }
}
