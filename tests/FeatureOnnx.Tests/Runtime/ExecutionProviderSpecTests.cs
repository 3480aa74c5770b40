using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Runtime;

[Trait("Category", TestCategory.Fast)]
public sealed class ExecutionProviderSpecTests
{
    [Theory]
    [InlineData("cpu", ExecutionProviderKind.Cpu, 0, "cpu")]
    [InlineData("CUDA", ExecutionProviderKind.Cuda, 0, "cuda:0")]
    [InlineData(" cuda:2 ", ExecutionProviderKind.Cuda, 2, "cuda:2")]
    public void Specs_parse_and_print(string text, ExecutionProviderKind kind, int device, string printed)
    {
        var spec = ExecutionProviderSpec.Parse(text);
        Assert.Equal(new ExecutionProviderSpec(kind, device), spec);
        Assert.Equal(printed, spec.ToString());
    }

    [Theory]
    [InlineData("tpu", "use cpu or cuda[:DEVICE].")]
    [InlineData("cpu:1", "use cpu or cuda[:DEVICE].")]
    [InlineData("cuda:x", "the device must be a number, e.g. cuda:0.")]
    [InlineData("cuda:-1", "the device must be a number, e.g. cuda:0.")]
    public void Mistakes_say_what_is_accepted_in_the_librarys_words(string text, string message) =>
        Assert.Equal(message, Assert.Throws<FormatException>(() => ExecutionProviderSpec.Parse(text)).Message);
}
