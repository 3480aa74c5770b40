using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Tests.Runtime;

[Trait("Category", TestCategory.Fast)]
public sealed class GraphOptimizationTests
{
    [Theory]
    [InlineData("all", GraphOptimizationLevel.ORT_ENABLE_ALL)]
    [InlineData("Extended", GraphOptimizationLevel.ORT_ENABLE_EXTENDED)]
    [InlineData("basic", GraphOptimizationLevel.ORT_ENABLE_BASIC)]
    [InlineData("none", GraphOptimizationLevel.ORT_DISABLE_ALL)]
    public void Names_map_to_onnx_runtimes_levels_and_back(string name, GraphOptimizationLevel level)
    {
        Assert.Equal(level, GraphOptimization.Parse(name));
        Assert.Equal(name.ToLowerInvariant(), GraphOptimization.Name(level));
    }

    [Fact]
    public void An_unknown_name_lists_the_names() =>
        Assert.Equal("use one of all, extended, basic, none.", Assert.Throws<FormatException>(() => GraphOptimization.Parse("max")).Message);
}
