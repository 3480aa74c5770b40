using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

public sealed class OnnxGraphTests
{
    private static readonly ModelCatalog Catalog = new();
    private static readonly ModelManifest Manifest = Catalog.Resolve("resnet18");

    private static OnnxGraph Net() => OnnxGraph.Load(Catalog.LocateFile(Manifest.Source, Manifest));

    [Fact]
    public void Lists_inputs_intermediates_and_outputs_with_recorded_shapes()
    {
        var tensors = Net().ListTensors();
        Assert.Equal("Input247", tensors[0].Name);
        Assert.Equal("input", tensors[0].Kind);
        Assert.Equal("[1,3,224,224]", tensors[0].ShapeText);
        var layer3 = tensors.Single(t => t.Name == "ReLU347_Output_0");
        Assert.Equal(("intermediate", "Relu", "[1,256,14,14]"), (layer3.Kind, layer3.Producer, layer3.ShapeText));
        Assert.Equal("output", tensors.Single(t => t.Name == "Pooling395_Output_0").Kind);
        Assert.Equal(75, tensors.Count); // 1 input + 74 node outputs
    }

    [Fact]
    public void Dynamic_batch_rewrites_axis_zero_everywhere()
    {
        var graph = Net();
        Assert.Empty(graph.MakeBatchDynamic());
        var tensors = graph.ListTensors();
        Assert.All(tensors.Where(t => t.Shape is not null), t => Assert.Equal("N", t.Shape![0]));
    }

    [Fact]
    public void Expose_adds_aliased_outputs_and_round_trips_through_a_file()
    {
        using var tmp = new Fixtures.TempDir();
        var graph = Net();
        graph.ExposeOutputs(OutputRequest.ParseList("ReLU283_Output_0=layer1, ReLU347_Output_0"));
        graph.Save(tmp.File("out.onnx"));
        var back = OnnxGraph.Load(tmp.File("out.onnx"));
        Assert.Equal(["Pooling395_Output_0", "layer1", "ReLU347_Output_0"], back.OutputNames);
    }

    [Fact]
    public void Prune_keeps_only_what_outputs_need()
    {
        var graph = Net();
        graph.ExposeOutputs([new OutputRequest("ReLU283_Output_0", "layer1")], replaceOutputs: true);
        var removed = graph.Prune();
        // Nodes 0..17 of the CNTK graph produce layer1, plus the alias node.
        Assert.Equal(74 - 18, removed);
        Assert.Equal(19, graph.Proto.Graph.Node.Count);
        var inits = graph.Proto.Graph.Initializer.Select(i => i.Name).ToHashSet();
        Assert.DoesNotContain("Parameter10", inits); // a layer4 weight
        Assert.Contains("Parameter91", inits); // the stem convolution
    }

    [Fact]
    public void Prepend_composes_the_preprocessing_graph_in_front()
    {
        var graph = Net();
        graph.Prepend(OnnxGraph.Load(Catalog.LocateFile(Manifest.Source.Prepend!, Manifest)));
        Assert.Equal(["OriginalInput"], graph.InputNames);
        Assert.Equal(77, graph.Proto.Graph.Node.Count);
        Assert.Equal(["Split", "Concat", "Sub"], graph.Proto.Graph.Node.Take(3).Select(n => n.OpType));
        Assert.Equal("Input247", graph.Proto.Graph.Node[2].Output[0]);
    }

    [Fact]
    public void Parse_list_handles_aliases_and_spaces() =>
        Assert.Equal([new OutputRequest("a", "a"), new OutputRequest("b/c:0", "x")], OutputRequest.ParseList(" a , b/c:0 = x ,"));
}
