using FeatureOnnx.Cli;

namespace FeatureOnnx.Tests.Cli;

[Trait("Category", TestCategory.Fast)]
public sealed class BenchCommandTests
{
    private static string Help(string command, string option) =>
        CommandSet.Root().Subcommands.Single(c => c.Name == command).Options.Single(o => o.Name == option).Description!;

    [Fact]
    public void Cuda_options_help_names_the_commands_own_device_option()
    {
        Assert.Contains("The device is --providers cuda:N.", Help("bench", "--cuda-options"));
        Assert.DoesNotContain("--provider ", Help("bench", "--cuda-options"));
        Assert.Contains("The device is --provider cuda:N.", Help("extract", "--cuda-options"));
    }

    [Fact]
    public void Input_path_help_describes_run_instead_of_its_history()
    {
        var help = Help("bench", "--input-path");
        Assert.DoesNotContain("what bench timed before", help);
        Assert.Contains("run (FeatureSession.Run: float32 batches from ordinary host memory, copied to the device by ONNX Runtime on each run; the default)", help);
    }
}
