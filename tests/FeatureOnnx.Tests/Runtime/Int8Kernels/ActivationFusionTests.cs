using FeatureOnnx.Models;
using FeatureOnnx.Runtime;
using FeatureOnnx.Runtime.Int8Kernels;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureOnnx.Tests.Runtime.Int8Kernels;

/// <summary>
/// An int8 MBConv-like block (1x1 expand, SiLU, squeeze-excitation with its own SiLU and sigmoid gate, 1x1 project,
/// pool), quantised by <see cref="Int8Quantization"/>, run twice on the CPU provider: with FeatureOnnx's kernels
/// swapped into ONNX Runtime's optimised graph, and with ONNX Runtime's own QLinearSigmoid + QLinearMul. ONNX Runtime's
/// kernels are the independent reference: the two differ only where a SiLU rounds once (ours) instead of twice.
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class ActivationFusionTests(ITestOutputHelper output)
{
    private const int Batch = 2, In = 8, Wide = 16, Squeezed = 4, Side = 6;

    [Fact]
    public void Fused_kernels_replace_both_silus_and_the_gate_and_agree_with_onnx_runtimes()
    {
        var x = Enumerable.Range(0, Batch * In * Side * Side).Select(i => MathF.Sin(i * 0.173f) * 2.5f).ToArray();
        var graph = Block(Batch, In, Side);
        var floatModel = graph.ToBytes();
        Int8Quantization.Apply(graph, new Int8Options { Calibrator = new MinMaxOn(x) });
        var int8 = graph.ToBytes();

        var settings = new SessionSettings { OptimizedModelCache = null, IntraOpThreads = 2 };
        var (ours, fused) = Run(int8, settings, x);
        var (theirs, none) = Run(int8, settings with { Int8ActivationKernels = false }, x);
        var reference = Run(floatModel, settings, x).Output;
        Assert.Null(none);
        if (!QuantizedActivations.IsAccelerated)
        {
            // Where the kernels cannot run (no AVX2), the rewrite does not either: ONNX Runtime's kernels, the same outputs.
            Assert.Null(fused);
            Assert.Equal(theirs, ours);
            output.WriteLine($"kernels off here (the CPU lacks {QuantizedActivations.Requirement}, or FEATUREONNX_INT8_KERNEL_TIER=none): ONNX Runtime's kernels ran");
            return;
        }
        Assert.Equal(new ActivationFusionCount(2, 1), fused);

        var scale = reference.Max(MathF.Abs);
        var oursError = (double)ours.Zip(reference, (a, b) => Math.Abs(a - b)).Max() / scale;
        var theirsError = (double)theirs.Zip(reference, (a, b) => Math.Abs(a - b)).Max() / scale;
        var apart = (double)ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max() / scale;
        output.WriteLine($"max |error| / max |float32|: ours {oursError:0.0000}, ONNX Runtime's {theirsError:0.0000}; apart {apart:0.0000}");
        // Both quantised (not the float graph), both within a few 8-bit steps of it, and within one step of each other.
        Assert.True(oursError is > 1e-5 and < 0.05, $"ours {oursError}");
        Assert.True(theirsError is > 1e-5 and < 0.05, $"ONNX Runtime's {theirsError}");
        Assert.True(apart < 0.02, $"apart {apart}");
    }

    [Fact]
    public void A_graph_without_the_patterns_comes_back_unchanged()
    {
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "g" } };
        model.Graph.Node.Add(new NodeProto { OpType = "QLinearMul", Domain = "com.microsoft", Input = { "a", "as", "az", "b", "bs", "bz", "cs", "cz" }, Output = { "c" } });
        var bytes = model.ToByteArray();
        var (rewritten, count) = ActivationFusion.Rewrite(bytes);
        Assert.True(count.IsEmpty);
        Assert.Same(bytes, rewritten);
    }

    private static (float[] Output, ActivationFusionCount? Fused) Run(byte[] model, SessionSettings settings, float[] x)
    {
        var (session, _, _) = FeatureSession.CreateSession(model, settings, int8: true, out var fused);
        using (session)
        {
            using var input = OrtValue.CreateTensorValueFromMemory(x, [Batch, In, Side, Side]);
            using var outputs = session.Run(new RunOptions(), ["x"], [input], ["y"]);
            return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), fused);
        }
    }

    /// <summary>
    /// x [<paramref name="batch"/>, <paramref name="channels"/>, side, side] -> Conv 1x1 -> SiLU -> [GAP -> Conv 1x1 -> SiLU
    /// -> Conv 1x1 -> Sigmoid] gate -> Mul -> Conv 1x1 back to <paramref name="channels"/> -> GAP -> Flatten (y).
    /// Also the model of <c>ExtractionPrecisionTests</c> (3 channels, 224, a symbolic batch).
    /// </summary>
    internal static OnnxGraph Block(OnnxDim batch, int channels, int side)
    {
        var g = new GraphProto { Name = "mbconv" };
        g.Input.Add(OnnxProto.Value("x", TensorProto.Types.DataType.Float, [batch, channels, side, side]));
        g.Output.Add(OnnxProto.Value("y", TensorProto.Types.DataType.Float, [batch, channels]));
        void Conv(string name, string input, int cin, int cout, float phase)
        {
            g.Initializer.Add(OnnxProto.Floats(name + ".w", Enumerable.Range(0, cout * cin).Select(i => MathF.Sin(i * 0.71f + phase) * 0.5f), [cout, cin, 1, 1]));
            g.Initializer.Add(OnnxProto.Floats(name + ".b", Enumerable.Range(0, cout).Select(i => MathF.Cos(i + phase) * 0.1f), [cout]));
            g.Node.Add(OnnxProto.Node("Conv", name, [input, name + ".w", name + ".b"], [name]));
        }
        void Silu(string name, string input)
        {
            g.Node.Add(OnnxProto.Node("Sigmoid", name + ".sigmoid", [input], [name + ".sigmoid"]));
            g.Node.Add(OnnxProto.Node("Mul", name, [input, name + ".sigmoid"], [name]));
        }
        Conv("expand", "x", channels, Wide, 0.3f);
        Silu("act", "expand");
        g.Node.Add(OnnxProto.Node("GlobalAveragePool", "squeeze", ["act"], ["squeeze"]));
        Conv("reduce", "squeeze", Wide, Squeezed, 1.1f);
        Silu("reduce.act", "reduce");
        Conv("excite", "reduce.act", Squeezed, Wide, 2.3f);
        g.Node.Add(OnnxProto.Node("Sigmoid", "gate", ["excite"], ["gate"]));
        g.Node.Add(OnnxProto.Node("Mul", "scaled", ["act", "gate"], ["scaled"]));
        Conv("project", "scaled", Wide, channels, 0.7f);
        g.Node.Add(OnnxProto.Node("GlobalAveragePool", "pool", ["project"], ["pool"]));
        g.Node.Add(OnnxProto.Node("Flatten", "flatten", ["pool"], ["y"]));
        return OnnxGraph.FromBytes(OnnxProto.Model(g, 17, 8, "test").ToByteArray(), "mbconv");
    }

    /// <summary>Calibration by min/max of each tensor on the test input itself, run on ONNX Runtime.</summary>
    private sealed class MinMaxOn(float[] x) : IActivationCalibrator
    {
        public string Key => "minmax-test-input";

        public CalibrationResult Collect(byte[] graph, IReadOnlyList<string> outputs)
        {
            using var session = new InferenceSession(graph);
            using var input = OrtValue.CreateTensorValueFromMemory(x, [Batch, In, Side, Side]);
            using var values = session.Run(new RunOptions(), ["x"], [input], outputs.ToArray());
            var ranges = values.Select(v =>
            {
                var span = v.GetTensorDataAsSpan<float>();
                float lo = float.MaxValue, hi = float.MinValue;
                foreach (var f in span) { lo = Math.Min(lo, f); hi = Math.Max(hi, f); }
                return new TensorRange(lo, hi);
            }).ToList();
            return new CalibrationResult(ranges, new CalibrationRecord("minmax", 1, 0, new string('0', 64), "test input"));
        }
    }
}
