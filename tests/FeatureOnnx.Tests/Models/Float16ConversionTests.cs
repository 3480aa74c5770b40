using FeatureOnnx.Models;
using FeatureOnnx.Runtime;
using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Tests.Models;

/// <summary>
/// The float16 conversion: its float32 twin (every float16 tensor rounded) against the float32 model on the test photos,
/// for the built-in resnet18 and export.py's efficientnet_b0 and vgg16; the real float16 graph on the CPU provider
/// against the twin; and the rewrite itself on small graphs checked by hand.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class Float16ConversionTests(ExportedBackbones exported, ITestOutputHelper output) : IClassFixture<ExportedBackbones>
{
    private static readonly ModelCatalog Catalog = new();

    private (ModelManifest Manifest, string Output) Model(string name)
    {
        if (name == "resnet18") return (Catalog.Resolve("resnet18"), "pooled");
        Skip.If(exported.Missing is not null, exported.Missing);
        var manifest = ModelManifest.Load(exported.Manifest(name));
        return (manifest, manifest.ResolveDefaultOutputs()[0]);
    }

    [SkippableTheory]
    [InlineData("resnet18")]
    [InlineData("efficientnet_b0")]
    [InlineData("vgg16")]
    public void Float16_twin_keeps_pooled_features_within_cosine_0_9999_of_fp32(string name)
    {
        var (manifest, layer) = Model(name);
        var photos = Uint8Agreement.Photos();
        var fp32 = PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.Fp32, photos);
        var twin = PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.Twin, photos);
        var r = PrecisionAgreement.Compare(fp32, twin, photos.Length);
        output.WriteLine($"{name} {layer}, float16 twin vs fp32: {r}");
        Assert.True(r.MinCosine >= 0.9999, $"min cosine {r.MinCosine}");
        Assert.True(r.MinCosine < 1.0 - 1e-9, "the twin should differ from fp32 (are the round trips still in the graph?)");
    }

    [SkippableFact]
    public void In_the_twin_float32_islands_and_the_old_all_float16_rules_agree_within_1e_6_on_efficientnet_b0()
    {
        // export.py --fp16 made every op float16, the squeeze-excitation pools and sigmoids included. The twin computes every
        // op in float32 and rounds what it stores, and an island that feeds a float16 op is rounded there anyway, so the twin
        // cannot tell the two rule sets apart (measured: 1e-7 either way, run to run); what the islands save on a GPU
        // (float16 accumulation inside reductions) is measured there (deploy/gpu/h200-check.sh).
        var (manifest, layer) = Model("efficientnet_b0");
        var photos = Uint8Agreement.Photos();
        var fp32 = PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.Fp32, photos);
        var all = PrecisionAgreement.Compare(fp32, PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.AllFloat16Twin, photos), photos.Length);
        var islands = PrecisionAgreement.Compare(fp32, PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.Twin, photos), photos.Length);
        output.WriteLine($"efficientnet_b0 {layer}: all-float16 twin {all}; with float32 islands {islands}");
        Assert.True(Math.Abs(islands.MinCosine - all.MinCosine) <= 1e-6, $"islands {islands.MinCosine}, all-float16 {all.MinCosine}");
        Assert.True(islands.MinCosine >= 0.9999, $"islands: min cosine {islands.MinCosine}");
    }

    [SkippableTheory]
    [InlineData("resnet18")]
    [InlineData("efficientnet_b0")]
    public void Real_float16_graph_runs_on_the_cpu_provider_within_cosine_0_9999_of_fp32(string name)
    {
        // The CPU provider casts around ops it has no float16 kernel for and then drops the Cast pairs between them, so it
        // rounds less often than a GPU does: closer to fp32 than the twin, which stays the stricter prediction for the GPU.
        var (manifest, layer) = Model(name);
        var photos = Uint8Agreement.Photos();
        var fp32 = PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.Fp32, photos);
        var twin = PrecisionAgreement.Compare(fp32, PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.Twin, photos), photos.Length);
        var fp16 = PrecisionAgreement.Compare(fp32, PrecisionAgreement.Features(manifest, Catalog, layer, PrecisionAgreement.Fp16, photos), photos.Length);
        output.WriteLine($"{name} {layer} vs fp32: float16 graph on the CPU {fp16}; twin {twin}");
        Assert.True(fp16.MinCosine >= 0.9999, $"min cosine {fp16.MinCosine}");
        Assert.True(fp16.MinCosine < 1.0 - 1e-9, "the float16 graph should differ from fp32");
    }

    [Fact]
    public void Twin_tensors_of_float16_ops_hold_float16_values_after_onnx_runtime_optimises_the_graph()
    {
        // ONNX Runtime must not drop the Cast round trips: layer1 (a Relu output, float16 in the real graph) is float16-exact
        var manifest = Catalog.Resolve("resnet18");
        var photos = Uint8Agreement.Photos().Take(2).ToArray();
        var twin = PrecisionAgreement.Features(manifest, Catalog, "layer1", PrecisionAgreement.Twin, photos);
        var fp32 = PrecisionAgreement.Features(manifest, Catalog, "layer1", PrecisionAgreement.Fp32, photos);
        Assert.All(twin, v => Assert.Equal(v, Float16Conversion.Round(v)));
        Assert.Contains(fp32, v => v != Float16Conversion.Round(v));
    }

    [Fact]
    public void Rules_of_the_builtin_resnet18_are_recorded_typed()
    {
        var prepared = PreparedModel.Build(Catalog.Resolve("resnet18"), ["pooled"], Catalog, PrecisionAgreement.Fp16);
        Assert.Equal(ModelPrecision.Fp16, prepared.Precision);
        var c = prepared.Conversion!;
        foreach (var line in c.Describe()) output.WriteLine(line);
        Assert.Equal("float16", c.Form);
        Assert.Equal(22, c.Rules.Single(r => r.Kind == ConversionRuleKind.FoldedBatchNormalization).Count);
        Assert.Contains("Conv x22", c.Rules.Single(r => r.Kind == ConversionRuleKind.Float16Compute).Ops);
        Assert.Contains("AveragePool x1", c.Rules.Single(r => r.Kind == ConversionRuleKind.Float32Island).Ops);
        // The composed graph also holds the preprocessing (Split, Concat, Sub) before the network
        var graph = OnnxGraph.FromBytes(prepared.OnnxBytes, "fp16");
        Assert.Equal(c.ToJson(), PrecisionConversion.ReadFrom(graph)!.ToJson());
        Assert.DoesNotContain(graph.Proto.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.All(graph.Proto.Graph.Output, o => Assert.Equal((int)TensorProto.Types.DataType.Float, o.Type.TensorType.ElemType));
    }

    [Fact]
    public void Small_graph_gets_float16_weights_casts_only_at_boundaries_and_a_float32_pool()
    {
        // input -> Conv -> Relu -> GlobalAveragePool -> Flatten -> output; expected by hand:
        // Cast(input to float16) -> Conv(float16 W) -> Relu -> Cast(to float32) -> GlobalAveragePool -> Flatten (follows, no Cast)
        var graph = TinyGraph(withBatchNorm: false);
        var fp32 = RunTiny(graph.ToBytes());
        var c = Float16Conversion.Apply(graph);
        var nodes = graph.Proto.Graph.Node.Select(n => n.OpType == "Cast" ? $"Cast{n.Attribute[0].I}" : n.OpType).ToList();
        Assert.Equal(["Cast10", "Conv", "Relu", "Cast1", "GlobalAveragePool", "Flatten"], nodes);
        Assert.Equal((int)TensorProto.Types.DataType.Float16, graph.Proto.Graph.Initializer.Single(t => t.Dims.Count == 4).DataType);
        Assert.Equal(2, c.Rules.Single(r => r.Kind == ConversionRuleKind.BoundaryCast).Count);
        var fp16 = RunTiny(graph.ToBytes());
        for (var i = 0; i < fp32.Length; i++) Assert.Equal(fp32[i], fp16[i], 2e-3f * Math.Abs(fp32[i]) + 1e-4f);
    }

    [Fact]
    public void Silu_runs_in_float16_and_a_squeeze_excitation_gate_stays_float32()
    {
        // Conv -> SiLU (x * Sigmoid(x)) -> GlobalAveragePool -> gate Sigmoid -> Mul -> GlobalAveragePool -> Flatten, as in
        // efficientnet's blocks; expected by hand: the SiLU's Sigmoid in float16 (no Casts), the pools and the gate in float32
        var g = new GraphProto { Name = "silu" };
        g.Input.Add(Value("x", [2, 3, 8, 8]));
        g.Output.Add(Value("y", [2, 4]));
        g.Initializer.Add(Tensor("w", [4, 3, 3, 3], i => MathF.Cos(i * 0.11f) * 0.3f));
        g.Node.Add(Node("Conv", ["x", "w"], "c", new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } }));
        g.Node.Add(Node("Sigmoid", ["c"], "s"));
        g.Node.Add(Node("Mul", ["c", "s"], "a"));
        g.Node.Add(Node("GlobalAveragePool", ["a"], "p"));
        g.Node.Add(Node("Sigmoid", ["p"], "gate"));
        g.Node.Add(Node("Mul", ["a", "gate"], "m"));
        g.Node.Add(Node("GlobalAveragePool", ["m"], "q"));
        g.Node.Add(Node("Flatten", ["q"], "y"));
        var model = new ModelProto { IrVersion = 8, Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        var graph = OnnxGraph.FromBytes(model.ToByteArray(), "silu");
        var fp32 = RunTiny(graph.ToBytes());
        var c = Float16Conversion.Apply(graph);
        var nodes = graph.Proto.Graph.Node.Select(n => n.OpType == "Cast" ? $"Cast{n.Attribute[0].I}" : n.OpType).ToList();
        Assert.Equal(["Cast10", "Conv", "Sigmoid", "Mul", "Cast1", "GlobalAveragePool", "Sigmoid", "Cast10", "Mul", "Cast1", "GlobalAveragePool", "Flatten"], nodes);
        Assert.Equal(["Sigmoid x1"], c.Rules.Single(r => r.Kind == ConversionRuleKind.SwishInFloat16).Ops);
        Assert.Equal(["GlobalAveragePool x2", "Sigmoid x1"], c.Rules.Single(r => r.Kind == ConversionRuleKind.Float32Island).Ops);
        var fp16 = RunTiny(graph.ToBytes());
        for (var i = 0; i < fp32.Length; i++) Assert.Equal(fp32[i], fp16[i], 2e-3f * Math.Abs(fp32[i]) + 1e-4f);
    }

    [Fact]
    public void Batch_normalization_is_folded_into_the_conv_with_the_same_outputs()
    {
        var graph = TinyGraph(withBatchNorm: true);
        var expected = RunTiny(graph.ToBytes());
        var twin = Float16Conversion.Apply(graph, new Float16Options { Form = Float16Form.Twin, Float32Ops = Float16Conversion.DefaultFloat32Ops });
        Assert.Equal(1, twin.Rules.Single(r => r.Kind == ConversionRuleKind.FoldedBatchNormalization).Count);
        Assert.DoesNotContain(graph.Proto.Graph.Node, n => n.OpType == "BatchNormalization");
        var folded = RunTiny(graph.ToBytes());
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], folded[i], 2e-3f * Math.Abs(expected[i]) + 1e-4f);
    }

    private static float[] RunTiny(byte[] model)
    {
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model);
        var input = Enumerable.Range(0, 2 * 3 * 8 * 8).Select(i => MathF.Sin(i * 0.37f) * 2f).ToArray();
        using var x = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(input, [2, 3, 8, 8]);
        using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), ["x"], [x], ["y"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static OnnxGraph TinyGraph(bool withBatchNorm)
    {
        var g = new GraphProto { Name = "tiny" };
        g.Input.Add(Value("x", [2, 3, 8, 8]));
        g.Output.Add(Value("y", [2, 4]));
        g.Initializer.Add(Tensor("w", [4, 3, 3, 3], i => MathF.Cos(i * 0.11f) * 0.3f));
        g.Initializer.Add(Tensor("b", [4], i => 0.1f * i - 0.15f));
        g.Node.Add(Node("Conv", ["x", "w", "b"], "conv", new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } }));
        var relu = "conv";
        if (withBatchNorm)
        {
            g.Initializer.Add(Tensor("gamma", [4], i => 0.5f + i));
            g.Initializer.Add(Tensor("beta", [4], i => 0.2f * i));
            g.Initializer.Add(Tensor("mean", [4], i => 0.05f * i - 0.1f));
            g.Initializer.Add(Tensor("var", [4], i => 0.3f + 0.2f * i));
            g.Node.Add(Node("BatchNormalization", ["conv", "gamma", "beta", "mean", "var"], "bn"));
            relu = "bn";
        }
        g.Node.Add(Node("Relu", [relu], "relu"));
        g.Node.Add(Node("GlobalAveragePool", ["relu"], "pool"));
        g.Node.Add(Node("Flatten", ["pool"], "y"));
        var model = new ModelProto { IrVersion = 8, Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return OnnxGraph.FromBytes(model.ToByteArray(), "tiny");
    }

    // One node named after its output, built by the library's own proto builder (what is tested is the conversion, not the builder).
    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes) =>
        OnnxProto.Node(op, output, inputs, [output], "", attributes);

    private static ValueInfoProto Value(string name, long[] dims) =>
        OnnxProto.Value(name, TensorProto.Types.DataType.Float, dims.Select(d => (OnnxDim)d));

    private static TensorProto Tensor(string name, long[] dims, Func<int, float> value) =>
        OnnxProto.Floats(name, Enumerable.Range(0, (int)dims.Aggregate(1L, (a, b) => a * b)).Select(value), dims);
}
