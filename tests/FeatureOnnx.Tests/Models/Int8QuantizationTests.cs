using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace FeatureOnnx.Tests.Models;

/// <summary>
/// int8 QDQ quantisation: the quantisation arithmetic against hand-computed cases (ONNX QuantizeLinear's
/// round-half-to-even and saturation), a small conv net quantised and run by ONNX Runtime against an independent
/// fake-quant reimplementation of the QDQ semantics, and what ONNX Runtime's CPU provider fuses (QLinear* nodes).
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class Int8QuantizationTests(ITestOutputHelper output)
{
    [Fact]
    public void Activation_scale_and_zero_point_match_a_hand_computed_case()
    {
        // [-1, 3]: scale 4/255, zero point round(1 / (4/255)) = round(63.75) = 64
        var (scale, zp) = Int8Quantization.ActivationParameters(new TensorRange(-1f, 3f));
        Assert.Equal(4f / 255f, scale, 1e-7f);
        Assert.Equal(64, zp);
        // a range that excludes 0 is widened to hold it (0 must be exact for padding and ReLU): [0.5, 2] -> [0, 2]
        Assert.Equal((2f / 255f, (byte)0), Int8Quantization.ActivationParameters(new TensorRange(0.5f, 2f)));
        Assert.Equal((1f, (byte)0), Int8Quantization.ActivationParameters(new TensorRange(0f, 0f)));
    }

    [Fact]
    public void QuantizeLinear_rounds_half_to_even_and_saturates()
    {
        // scale 0.5: 1.25 -> 2.5 -> 2, 1.75 -> 3.5 -> 4, 0.75 -> 1.5 -> 2 (ties to even, as ONNX QuantizeLinear); zero point 10 added after rounding
        Assert.Equal(12, Int8Quantization.QuantizeUint8(1.25f, 0.5f, 10));
        Assert.Equal(14, Int8Quantization.QuantizeUint8(1.75f, 0.5f, 10));
        Assert.Equal(12, Int8Quantization.QuantizeUint8(0.75f, 0.5f, 10));
        Assert.Equal(255, Int8Quantization.QuantizeUint8(1000f, 0.5f, 10));
        Assert.Equal(0, Int8Quantization.QuantizeUint8(-1000f, 0.5f, 10));
    }

    [Fact]
    public void Weights_are_symmetric_per_output_channel_with_ties_to_even()
    {
        float[] w = [0.5f, -1f, 0.25f, /* all zero */ 0f, 0f, 0f, /* max 2.54 */ 2.54f, -0.01f, 1.27f];
        var (q, scales) = Int8Quantization.QuantizeWeights(w, 3);
        Assert.Equal(1f / 127f, scales[0], 1e-9f);
        Assert.Equal(1f, scales[1]); // an all-zero channel keeps scale 1 (no division by 0)
        Assert.Equal(0.02f, scales[2], 1e-7f);
        // 0.5 * 127 = 63.5 -> 64; 0.25 * 127 = 31.75 -> 32; 1.27 / 0.02 = 63.5 -> 64; -0.01 / 0.02 = -0.5 -> 0 (even)
        Assert.Equal(new sbyte[] { 64, -127, 32, 0, 0, 0, 127, 0, 64 }, q);
    }

    [Fact]
    public void Quantised_conv_net_on_onnx_runtime_equals_an_independent_fake_quant_reference()
    {
        var ranges = new Dictionary<string, TensorRange>
        {
            ["x"] = new(-2f, 2f), ["relu1"] = new(0f, 2f), ["conv2"] = new(-1.5f, 1.5f), ["relu2"] = new(0f, 2.5f),
        };
        var graph = TinyNet();
        var conversion = Int8Quantization.Apply(graph, new Int8Options { Calibrator = new FixedRanges(ranges) });
        Assert.Contains(conversion.Rules, r => r.Kind == ConversionRuleKind.ReluFolded && r.Count == 2);
        Assert.Contains(conversion.Rules, r => r.Kind == ConversionRuleKind.Float32Kept && r.Ops.Contains("GlobalAveragePool (final pooling) x1"));

        var x = Input();
        var onnx = Run(graph.ToBytes(), x);
        var reference = Reference(x, ranges);
        var step = Int8Quantization.ActivationParameters(ranges["relu2"]).Scale;
        var maxDiff = onnx.Zip(reference, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"ORT {string.Join(", ", onnx)}; reference {string.Join(", ", reference)}; max |diff| {maxDiff} ({maxDiff / step:0.00} steps of the last quantised tensor)");
        // Fused QLinearConv requantises with one float multiplier (x scale * w scale / y scale) where the reference divides
        // in double: a value at a rounding tie may land one step apart, and the pooled output averages 16 of them.
        Assert.True(maxDiff <= step, $"max |diff| {maxDiff} > one step {step}");
        Assert.True(onnx.Zip(Run(TinyNet().ToBytes(), x), (a, b) => Math.Abs(a - b)).Max() > 1e-4, "the quantised net should differ from the float32 one");

        var ops = Int8Fusion.OptimizedOpCounts(graph.ToBytes());
        output.WriteLine(string.Join(", ", ops.Select(kv => $"{kv.Key} x{kv.Value}")));
        Assert.Equal(2, ops.GetValueOrDefault("QLinearConv"));
        Assert.Equal(1, ops.GetValueOrDefault("QLinearAdd"));
        Assert.False(ops.ContainsKey("Conv"), "a Conv was left in float32");
    }

    [Fact]
    public void Float16_stored_weights_of_the_deployment_build_are_read_back_and_quantised()
    {
        var ranges = new Dictionary<string, TensorRange> { ["x"] = new(-2f, 2f), ["relu1"] = new(0f, 2f), ["conv2"] = new(-1.5f, 1.5f), ["relu2"] = new(0f, 2.5f) };
        var graph = TinyNet();
        Assert.Equal(4, graph.StoreWeightsAsFloat16(minElements: 1).Converted);
        var conversion = Int8Quantization.Apply(graph, new Int8Options { Calibrator = new FixedRanges(ranges) });
        Assert.Contains(conversion.Rules, r => r.Kind == ConversionRuleKind.RestoredFloat32Weights && r.Count == 4);
        Assert.Contains(conversion.Rules, r => r.Kind == ConversionRuleKind.Int8Compute && r.Ops.Contains("Conv x2"));
        Assert.Equal(2, Int8Fusion.OptimizedOpCounts(graph.ToBytes()).GetValueOrDefault("QLinearConv"));
    }

    [Fact]
    public void Built_in_resnet18_fuses_every_conv_and_add_into_qlinear_ops()
    {
        var catalog = new ModelCatalog();
        var manifest = catalog.Resolve("resnet18");
        var calibrator = new ImageCalibrator(manifest, [Fixtures.PathOf("photos")], new CalibrationOptions { Count = 8 });
        var prepared = PreparedModel.Build(manifest, ["pooled"], catalog, new PrepareOptions { Precision = ModelPrecision.Int8, Int8 = new Int8Options { Calibrator = calibrator } });
        var planned = prepared.Conversion!.Rules.Single(r => r.Kind == ConversionRuleKind.Int8Compute);
        var ops = Int8Fusion.OptimizedOpCounts(prepared.OnnxBytes);
        output.WriteLine($"planned {string.Join(", ", planned.Ops)}; ONNX Runtime's optimised graph: {string.Join(", ", ops.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} x{kv.Value}"))}");
        int Planned(string op) => int.Parse(planned.Ops.Single(o => o.StartsWith(op + " x", StringComparison.Ordinal))[(op.Length + 2)..]);
        Assert.Equal(Planned("Conv"), ops.GetValueOrDefault("QLinearConv"));
        Assert.Equal(Planned("Add"), ops.GetValueOrDefault("QLinearAdd"));
        Assert.False(ops.ContainsKey("Conv"), "a Conv was left in float32");
        Assert.Equal(1, ops.GetValueOrDefault("DequantizeLinear")); // only before the final pooling, which stays float32
        Assert.Equal(8, prepared.Conversion.Calibration!.Images);
        Assert.Equal(calibrator.Sha256, prepared.Conversion.Calibration.Sha256);
    }

    [Fact]
    public void Int8_without_calibration_images_is_refused_with_a_reason()
    {
        var catalog = new ModelCatalog();
        var e = Assert.Throws<ArgumentException>(() => PreparedModel.Build(catalog.Resolve("resnet18"), ["pooled"], catalog, new PrepareOptions { Precision = ModelPrecision.Int8 }));
        Assert.Contains("calibration images", e.Message);
    }

    /// <summary>Returns fixed ranges, keyed by the tensor each calibration output exposes; fails on a tensor it was not told of.</summary>
    private sealed class FixedRanges(IReadOnlyDictionary<string, TensorRange> ranges) : IActivationCalibrator
    {
        public string Key => "fixed";

        public CalibrationResult Collect(byte[] graph, IReadOnlyList<string> outputs)
        {
            var exposed = ModelProto.Parser.ParseFrom(graph).Graph.Node.Where(n => n.OpType == "Identity").ToDictionary(n => n.Output[0], n => n.Input[0]);
            return new CalibrationResult(outputs.Select(o => ranges[exposed[o]]).ToList(), new CalibrationRecord("fixed", 0, 0, new string('0', 64), "test"));
        }
    }

    private static float[] Input() => Enumerable.Range(0, 3 * 8 * 8).Select(i => MathF.Sin(i * 0.37f) * 2.2f).ToArray();

    private static float[] W1() => Enumerable.Range(0, 4 * 3 * 3 * 3).Select(i => MathF.Cos(i * 0.11f) * 0.3f).ToArray();
    private static float[] B1() => [0.1f, -0.05f, 0.2f, 0f];
    private static float[] W2() => Enumerable.Range(0, 4 * 4 * 3 * 3).Select(i => MathF.Sin(i * 0.23f + 1) * 0.2f).ToArray();
    private static float[] B2() => [-0.1f, 0.05f, 0f, 0.15f];

    /// <summary>x -> Conv -> Relu -> MaxPool -> Conv -> Add(with the pool) -> Relu -> GlobalAveragePool -> Flatten.</summary>
    private static OnnxGraph TinyNet()
    {
        var g = new GraphProto { Name = "tiny" };
        g.Input.Add(Value("x", [1, 3, 8, 8]));
        g.Output.Add(Value("y", [1, 4]));
        g.Initializer.Add(Tensor("w1", [4, 3, 3, 3], W1()));
        g.Initializer.Add(Tensor("b1", [4], B1()));
        g.Initializer.Add(Tensor("w2", [4, 4, 3, 3], W2()));
        g.Initializer.Add(Tensor("b2", [4], B2()));
        var pads = new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } };
        g.Node.Add(Node("Conv", ["x", "w1", "b1"], "conv1", pads));
        g.Node.Add(Node("Relu", ["conv1"], "relu1"));
        g.Node.Add(Node("MaxPool", ["relu1"], "pool", new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 2, 2 } },
            new AttributeProto { Name = "strides", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 2, 2 } }));
        g.Node.Add(Node("Conv", ["pool", "w2", "b2"], "conv2", pads.Clone()));
        g.Node.Add(Node("Add", ["pool", "conv2"], "add"));
        g.Node.Add(Node("Relu", ["add"], "relu2"));
        g.Node.Add(Node("GlobalAveragePool", ["relu2"], "gap"));
        g.Node.Add(Node("Flatten", ["gap"], "y"));
        var model = new ModelProto { IrVersion = 8, Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return OnnxGraph.FromBytes(model.ToByteArray(), "tiny");
    }

    private static float[] Run(byte[] model, float[] x)
    {
        using var session = new InferenceSession(model);
        using var input = OrtValue.CreateTensorValueFromMemory(x, [1, 3, 8, 8]);
        using var outputs = session.Run(new RunOptions(), ["x"], [input], ["y"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    // ---- the reference: ONNX's QDQ semantics written out, sharing no code with Int8Quantization ----

    private static (double Scale, int ZeroPoint) Params(TensorRange r)
    {
        double min = Math.Min(r.Min, 0), max = Math.Max(r.Max, 0);
        var scale = (float)((max - min) / 255); // ONNX keeps the scale as float32
        return (scale, (int)Math.Clamp(Math.Round(-min / scale, MidpointRounding.ToEven), 0, 255));
    }

    /// <summary>DequantizeLinear(QuantizeLinear(v)) with uint8: (clamp(round_half_even(v / s) + zp, 0, 255) - zp) * s.</summary>
    private static double[] FakeQuant(double[] v, TensorRange r)
    {
        var (s, zp) = Params(r);
        return v.Select(x => (Math.Clamp(Math.Round((float)x / (float)s, MidpointRounding.ToEven) + zp, 0, 255) - zp) * s).ToArray();
    }

    /// <summary>Per-output-channel symmetric int8 weights and int32 biases, dequantised.</summary>
    private static (double[] W, double[] B) Dequantised(float[] w, float[] b, int channels, double inputScale)
    {
        var per = w.Length / channels;
        var dw = new double[w.Length];
        var db = new double[channels];
        for (var c = 0; c < channels; c++)
        {
            double max = 0;
            for (var j = 0; j < per; j++) max = Math.Max(max, Math.Abs(w[c * per + j]));
            var s = (float)(max / 127);
            for (var j = 0; j < per; j++) dw[c * per + j] = Math.Clamp(Math.Round(w[c * per + j] / s, MidpointRounding.ToEven), -127, 127) * s;
            var bs = (float)(s * (float)inputScale);
            db[c] = Math.Round(b[c] / bs, MidpointRounding.ToEven) * bs;
        }
        return (dw, db);
    }

    private static double[] Conv3x3(double[] x, int cin, int size, double[] w, double[] b, int cout)
    {
        var y = new double[cout * size * size];
        for (var o = 0; o < cout; o++)
            for (var i = 0; i < size; i++)
                for (var j = 0; j < size; j++)
                {
                    var sum = b[o];
                    for (var c = 0; c < cin; c++)
                        for (var ki = 0; ki < 3; ki++)
                            for (var kj = 0; kj < 3; kj++)
                            {
                                int ii = i + ki - 1, jj = j + kj - 1;
                                if (ii < 0 || jj < 0 || ii >= size || jj >= size) continue;
                                sum += x[(c * size + ii) * size + jj] * w[((o * cin + c) * 3 + ki) * 3 + kj];
                            }
                    y[(o * size + i) * size + j] = sum;
                }
        return y;
    }

    private static float[] Reference(float[] input, IReadOnlyDictionary<string, TensorRange> r)
    {
        var x = FakeQuant(input.Select(v => (double)v).ToArray(), r["x"]);
        var (w1, b1) = Dequantised(W1(), B1(), 4, Params(r["x"]).Scale);
        var relu1 = FakeQuant(Conv3x3(x, 3, 8, w1, b1, 4), r["relu1"]); // Relu folded: zero point 0 clips the negatives
        var pool = new double[4 * 4 * 4];
        for (var c = 0; c < 4; c++)
            for (var i = 0; i < 4; i++)
                for (var j = 0; j < 4; j++)
                    pool[(c * 4 + i) * 4 + j] = new[] { relu1[(c * 8 + 2 * i) * 8 + 2 * j], relu1[(c * 8 + 2 * i) * 8 + 2 * j + 1], relu1[(c * 8 + 2 * i + 1) * 8 + 2 * j], relu1[(c * 8 + 2 * i + 1) * 8 + 2 * j + 1] }.Max();
        pool = FakeQuant(pool, r["relu1"]); // MaxPool keeps its input's scale and zero point
        var (w2, b2) = Dequantised(W2(), B2(), 4, Params(r["relu1"]).Scale);
        var conv2 = FakeQuant(Conv3x3(pool, 4, 4, w2, b2, 4), r["conv2"]);
        var relu2 = FakeQuant(pool.Zip(conv2, (a, b) => a + b).ToArray(), r["relu2"]);
        return Enumerable.Range(0, 4).Select(c => (float)relu2.Skip(c * 16).Take(16).Average()).ToArray();
    }

    // One node named after its output, built by the library's own proto builder (what is tested is the conversion, not the builder).
    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes) =>
        OnnxProto.Node(op, output, inputs, [output], "", attributes);

    private static ValueInfoProto Value(string name, long[] dims) =>
        OnnxProto.Value(name, TensorProto.Types.DataType.Float, dims.Select(d => (OnnxDim)d));

    private static TensorProto Tensor(string name, long[] dims, float[] values) => OnnxProto.Floats(name, values, dims);
}
