using FeatureOnnx.Models;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureOnnx.Tests.Models;

public sealed class OnnxGraphTests(ITestOutputHelper output)
{
    private static readonly ModelCatalog Catalog = new();
    private static readonly ModelManifest Manifest = Catalog.Resolve("resnet18");

    private static OnnxGraph Net() => OnnxGraph.Load(Catalog.LocateFile(Manifest.Source, Manifest));

    [Trait("Category", TestCategory.Fast)]
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

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Dynamic_batch_rewrites_axis_zero_everywhere()
    {
        var graph = Net();
        Assert.Empty(graph.MakeBatchDynamic());
        var tensors = graph.ListTensors();
        Assert.All(tensors.Where(t => t.Shape is not null), t => Assert.Equal("N", t.Shape![0]));
    }

    [Trait("Category", TestCategory.Fast)]
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

    [Trait("Category", TestCategory.Fast)]
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

    [Trait("Category", TestCategory.Fast)]
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

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Parse_list_handles_aliases_and_spaces() =>
        Assert.Equal([new OutputRequest("a", "a"), new OutputRequest("b/c:0", "x")], OutputRequest.ParseList(" a , b/c:0 = x ,"));

    // y = x . W + b with W [1024,1] and b [1]; W listed among the graph inputs as IR version 3 files do.
    private static OnnxGraph MatMulGraph(float weight, float bias)
    {
        var graph = new GraphProto { Name = "matmul" };
        var w = new TensorProto { Name = "W", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 1024, 1 } };
        var raw = new byte[1024 * 4];
        for (var i = 0; i < 1024; i++) BitConverter.TryWriteBytes(raw.AsSpan(i * 4), weight);
        w.RawData = ByteString.CopyFrom(raw);
        var b = new TensorProto { Name = "B", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 1 }, FloatData = { bias } };
        graph.Initializer.Add(w);
        graph.Initializer.Add(b);
        graph.Input.Add(Value("x", [1, 1024]));
        graph.Input.Add(Value("W", [1024, 1]));
        graph.Node.Add(new NodeProto { OpType = "MatMul", Input = { "x", "W" }, Output = { "xw" } });
        graph.Node.Add(new NodeProto { OpType = "Add", Input = { "xw", "B" }, Output = { "y" } });
        graph.Output.Add(Value("y", [1, 1]));
        var model = new ModelProto { IrVersion = 3, Graph = graph, OpsetImport = { new OperatorSetIdProto { Domain = "", Version = 8 } } };
        return OnnxGraph.FromBytes(model.ToByteArray(), "matmul");
    }

    private static ValueInfoProto Value(string name, long[] shape)
    {
        var type = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        foreach (var d in shape) type.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = type } };
    }

    private static float RunMatMul(OnnxGraph graph)
    {
        using var session = new InferenceSession(graph.ToBytes());
        using var x = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1f, 1024).ToArray(), [1, 1024]);
        using var y = session.Run(new RunOptions(), ["x"], [x], ["y"]);
        return y[0].GetTensorDataAsSpan<float>()[0];
    }

    [Trait("Category", TestCategory.Fast)]
    [Theory]
    // float16 keeps 10 fraction bits: 1 + 2^-12 rounds down to 1; 1 + 3 * 2^-11 is a tie between 1 + 2^-10 and
    // 1 + 2^-9 and goes to the even one, 1 + 2^-9; 0.1f becomes 0.0999755859375 (0x2E66). The bias (1 value) stays float32.
    [InlineData(1 + 1.0 / 4096, 1.0)]
    [InlineData(1 + 3.0 / 2048, 1 + 1.0 / 512)]
    [InlineData(0.1, 0.0999755859375)]
    public void Float16_weight_storage_rounds_to_nearest_even_and_keeps_float32_arithmetic(double weight, double stored)
    {
        const float bias = 0.3f;
        var graph = MatMulGraph((float)weight, bias);
        Assert.Equal(1024 * (float)weight + bias, RunMatMul(graph), 3);
        var report = graph.StoreWeightsAsFloat16();
        Assert.Equal((1, 1, 1024 * 4 + 4L, 1024 * 2 + 4L), (report.Converted, report.Kept, report.BytesBefore, report.BytesAfter));
        Assert.Equal(Math.Abs(stored - (float)weight) / (float)weight, report.MaxRelativeRounding, 12);
        var back = OnnxGraph.FromBytes(graph.ToBytes(), "converted");
        Assert.Equal((float)(1024 * stored + bias), RunMatMul(back)); // 1024 * stored is exact in float32
        Assert.StartsWith("float16: 1 float32 weight tensors", back.WeightStorage);
        var w16 = back.Proto.Graph.Initializer.Single(i => i.Name == "W_float16");
        Assert.Equal((int)TensorProto.Types.DataType.Float16, w16.DataType);
        Assert.Equal(2048, w16.RawData.Length);
        Assert.Contains(back.Proto.Graph.Input, i => i.Name == "W_float16"); // the IR 3 input list follows the rename
        Assert.Equal(["x"], back.InputNames);
    }

    [Trait("Category", TestCategory.Slow)]
    [Fact]
    public void Float16_weights_of_the_built_in_resnet18_move_the_pooled_vector_by_about_1e_3()
    {
        var graph = Net();
        var original = graph.ToBytes();
        var report = graph.StoreWeightsAsFloat16();
        output.WriteLine($"{report}");
        Assert.Equal(22, report.Converted); // the 22 convolution kernels; biases and batch-norm statistics stay float32
        Assert.True(report.BytesAfter < 0.51 * report.BytesBefore);
        Assert.True(report.MaxRelativeRounding <= Math.Pow(2, -11));
        using var full = new InferenceSession(original);
        using var half = new InferenceSession(graph.ToBytes());
        var rng = new Random(5);
        for (var image = 0; image < 3; image++)
        {
            // Input247 is BGR minus the mean image: roughly -128..128.
            var input = Enumerable.Range(0, 3 * 224 * 224).Select(_ => (float)(rng.NextDouble() * 256 - 128)).ToArray();
            using var x = OrtValue.CreateTensorValueFromMemory(input, [1, 3, 224, 224]);
            using var a = full.Run(new RunOptions(), ["Input247"], [x], ["Pooling395_Output_0"]);
            using var b = half.Run(new RunOptions(), ["Input247"], [x], ["Pooling395_Output_0"]);
            var expected = a[0].GetTensorDataAsSpan<float>().ToArray();
            var actual = b[0].GetTensorDataAsSpan<float>().ToArray();
            var cosine = Fixtures.Cosine(actual, expected);
            var maxRelative = actual.Zip(expected, (p, q) => Math.Abs(p - q)).Max() / expected.Max(Math.Abs);
            output.WriteLine($"image {image}: cosine {cosine:0.000000000}, max |diff| / max |value| {maxRelative:0.0e0}");
            // float16 keeps 11 significant bits (rounding <= 4.9e-4 per weight): the pooled vector moves by about 1e-3, bounded here at 10x that.
            Assert.True(cosine >= 0.99999, $"cosine {cosine}");
            Assert.True(maxRelative <= 1e-2, $"max relative {maxRelative}");
            Assert.True(maxRelative > 0, "float16 weights must change something: was the conversion a no-op?");
        }
    }
}
