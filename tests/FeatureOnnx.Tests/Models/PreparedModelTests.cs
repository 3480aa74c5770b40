using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

[Trait("Category", TestCategory.Fast)]
public sealed class PreparedModelTests
{
    [Fact]
    public void A_wrong_output_name_lists_the_manifests_outputs_before_graph_tensors()
    {
        var catalog = new ModelCatalog();
        var manifest = catalog.Resolve("resnet18");
        var e = Assert.Throws<ArgumentException>(() => PreparedModel.Build(manifest, ["layer5"], catalog));
        Assert.StartsWith("model 'resnet18' has no output named 'layer5' (did you mean 'layer1' or 'layer2' or 'layer3' or 'layer4'?). " +
                          "Its outputs: pooled, layer1, layer2, layer3, layer4. Any graph tensor also works as TENSOR[=alias]; the closest names: ", e.Message);
        Assert.EndsWith("(OnnxGraph.ListTensors lists all 80 of resnet18).", e.Message); // the CLI: 'featureonnx inspect MODEL --all' (CliErrors.Flags)

        // Far from every output: no guess, the outputs still come first.
        e = Assert.Throws<ArgumentException>(() => PreparedModel.Build(manifest, ["Pooling39_Output_0=x"], catalog));
        Assert.StartsWith("model 'resnet18' has no output named 'Pooling39_Output_0'. Its outputs: pooled,", e.Message);
        Assert.Contains("the closest names: Pooling395_Output_0,", e.Message);
    }
}
