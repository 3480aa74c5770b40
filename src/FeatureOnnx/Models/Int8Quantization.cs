using System.Buffers.Binary;
using System.Globalization;
using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Models;

/// <summary>How activation ranges are taken from the calibration images.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value seen: nothing clipped, coarser steps when a few values are far out.</summary>
    MinMax,
    /// <summary>The <see cref="CalibrationOptions.Percentile"/>-th and (100 - P)-th percentiles of all values of a tensor: rare outliers clipped, finer steps.</summary>
    Percentile,
}

/// <summary>Options for int8 calibration; the defaults are what <c>--precision int8</c> uses.</summary>
public sealed record CalibrationOptions
{
    /// <summary>Range estimate. Default: <see cref="CalibrationMethod.Percentile"/>.</summary>
    public CalibrationMethod Method { get; init; } = CalibrationMethod.Percentile;

    /// <summary>Percentile for <see cref="CalibrationMethod.Percentile"/> (the upper end; the lower end is 100 - P). Default: 99.99.</summary>
    public double Percentile { get; init; } = 99.99;

    /// <summary>Images used (the first ones of the set, in listing order). Default: 256.</summary>
    public int Count { get; init; } = 256;

    /// <summary>The method as written on the command line and in run.json: <c>minmax</c> or <c>percentile:99.99</c>.</summary>
    public string MethodName => Method == CalibrationMethod.MinMax ? "minmax" : $"percentile:{Percentile.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses <c>minmax</c>, <c>percentile</c> or <c>percentile:P</c> (0 &lt; P &lt;= 100) into these options.</summary>
    /// <exception cref="ArgumentException">Not one of those.</exception>
    public CalibrationOptions WithMethod(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "minmax") return this with { Method = CalibrationMethod.MinMax };
        if (t == "percentile") return this with { Method = CalibrationMethod.Percentile };
        if (t.StartsWith("percentile:", StringComparison.Ordinal)
            && double.TryParse(t["percentile:".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out var p) && p > 50 && p <= 100)
            return this with { Method = CalibrationMethod.Percentile, Percentile = p };
        throw new ArgumentException($"calibration method '{text}': expected minmax, percentile or percentile:P with 50 < P <= 100 (e.g. percentile:99.99).");
    }
}

/// <summary>The range of one activation tensor over the calibration images.</summary>
/// <param name="Min">Lower end.</param>
/// <param name="Max">Upper end.</param>
public readonly record struct TensorRange(float Min, float Max);

/// <summary>Which images calibrated an int8 model (run.json, report.json and <c>inspect</c> show it).</summary>
/// <param name="Method">minmax or percentile:P.</param>
/// <param name="Images">Images whose activations were measured.</param>
/// <param name="Failed">Images of the set that could not be decoded (left out).</param>
/// <param name="Sha256">SHA-256 over the contents of the images (in order): the same files give the same hash wherever they lie.</param>
/// <param name="Source">Where they came from (a folder, a list, or the run's own input).</param>
public sealed record CalibrationRecord(string Method, int Images, int Failed, string Sha256, string Source)
{
    /// <summary>One line for <c>inspect</c> and logs.</summary>
    public string Describe() => $"Calibration: {Method} over {Images} images ({Source}; sha256 {Sha256[..16]}){(Failed > 0 ? $", {Failed} undecodable left out" : "")}";
}

/// <summary>Activation ranges measured by an <see cref="IActivationCalibrator"/>, with what measured them.</summary>
/// <param name="Ranges">One range per requested tensor, in request order.</param>
/// <param name="Record">The calibration set and method.</param>
public sealed record CalibrationResult(IReadOnlyList<TensorRange> Ranges, CalibrationRecord Record);

/// <summary>
/// Measures activation ranges for <see cref="Int8Quantization"/>: runs a float32 graph over calibration images and
/// returns the range of each named output. Implemented above the stages (it needs images, preprocessing and a runtime:
/// <c>FeatureOnnx.Pipeline.ImageCalibrator</c>); the graph surgery here knows no images.
/// </summary>
public interface IActivationCalibrator
{
    /// <summary>Identifies the images and the method (part of the conversion cache key): the same key must give the same ranges.</summary>
    string Key { get; }

    /// <summary>Runs <paramref name="graph"/> (float32, the model's float32 input) and returns the range of each of <paramref name="outputs"/> (float32 graph outputs).</summary>
    CalibrationResult Collect(byte[] graph, IReadOnlyList<string> outputs);
}

/// <summary>Options for <see cref="Int8Quantization.Apply"/>; the defaults are the rules <c>--precision int8</c> uses (measured in README's int8 section).</summary>
public sealed record Int8Options
{
    /// <summary>Measures the activation ranges. Required for a conversion (the CLI calibrates on <c>--calibrate</c> or the run's own first images).</summary>
    public IActivationCalibrator? Calibrator { get; init; }

    /// <summary>Quantise the first Conv (it reads the normalised image). Default: true (measured: its float32 form cost
    /// speed and bought no accuracy worth keeping; see README).</summary>
    public bool QuantizeFirstConv { get; init; } = true;

    /// <summary>Quantise depthwise Convs (group == channels, efficientnet's). Default: true.</summary>
    public bool QuantizeDepthwise { get; init; } = true;

    /// <summary>Quantise Sigmoid and Mul (SiLU, squeeze-excitation gates) and the squeeze pools (QLinearSigmoid, QLinearMul,
    /// QLinearGlobalAveragePool). Default: true: measured on efficientnet_b0, float32 SiLU and gates between QuantizeLinear/DequantizeLinear
    /// pairs ran slower than fp32 (0.78 s against 0.65 s a batch of 16), all-int8 2.1x faster, with the same pooled cosine (median 0.943 against 0.936).</summary>
    public bool QuantizeSigmoidMul { get; init; } = true;

    /// <summary>Quantise the final pooling (a GlobalAveragePool or AveragePool with no Conv after it). Default: false: the pooled features stay float32, an average of 8-bit values at no measurable cost.</summary>
    public bool QuantizeGlobalPool { get; init; }

    /// <summary>The options as text, for the cache key and the record.</summary>
    internal string Key => $"first={QuantizeFirstConv}|dw={QuantizeDepthwise}|gap={QuantizeGlobalPool}|sigmul={QuantizeSigmoidMul}";
}

/// <summary>
/// Static int8 quantisation in QDQ form, for ONNX Runtime's CPU provider: BatchNormalization folded into the Conv
/// before it (<see cref="Float16Conversion"/>'s folding), weights int8 symmetric per output channel (zero point 0),
/// biases int32 (scale = input scale x weight scale), activations uint8 per tensor with scale and zero point from
/// calibrated ranges, and DequantizeLinear -> op -> QuantizeLinear around Conv, Gemm, MatMul, Add, MaxPool,
/// AveragePool and Concat, the pattern ONNX Runtime fuses into QLinearConv, QLinearAdd, ... (NHWC). A Relu after a
/// quantised op is folded into that op's QuantizeLinear. Sigmoid, Mul (SiLU and squeeze-excitation), the global
/// pooling and every op not listed stay float32 between a DequantizeLinear and a QuantizeLinear. Graph input and
/// outputs stay float32. Pure graph surgery: the ranges come from an <see cref="IActivationCalibrator"/>.
/// </summary>
public static class Int8Quantization
{
    /// <summary>Opset the graph is raised to when older: per-channel QuantizeLinear/DequantizeLinear need 13.</summary>
    public const int MinimumOpset = 13;

    /// <summary>Changes whenever the rules change, so cached conversions made by older rules are not reused.</summary>
    public const int RulesVersion = 3;

    private const int Float = (int)TensorProto.Types.DataType.Float;

    /// <summary>The uint8 scale and zero point ONNX's QuantizeLinear takes for a range: the range widened to hold 0
    /// (so that 0 is exact: padding, ReLU), scale = (max - min) / 255, zero point = round(-min / scale).</summary>
    public static (float Scale, byte ZeroPoint) ActivationParameters(TensorRange range)
    {
        var min = Math.Min(range.Min, 0f);
        var max = Math.Max(range.Max, 0f);
        if (!float.IsFinite(min) || !float.IsFinite(max)) throw new ArgumentException($"range [{range.Min}, {range.Max}] is not finite.");
        var scale = (max - min) / 255f;
        if (scale == 0f) return (1f, 0);
        var zp = Math.Clamp(Math.Round(-min / scale, MidpointRounding.ToEven), 0, 255);
        return (scale, (byte)zp);
    }

    /// <summary>ONNX QuantizeLinear to uint8: saturate(round_half_to_even(x / scale) + zero point).</summary>
    public static byte QuantizeUint8(float x, float scale, byte zeroPoint) =>
        (byte)Math.Clamp(Math.Round(x / scale, MidpointRounding.ToEven) + zeroPoint, 0, 255);

    /// <summary>
    /// Symmetric per-channel int8 weights along axis 0 (output channels): scale_c = max|w_c| / 127 (1 for an all-zero
    /// channel), q = round_half_to_even(w / scale_c) in [-127, 127].
    /// </summary>
    public static (sbyte[] Values, float[] Scales) QuantizeWeights(ReadOnlySpan<float> weights, int channels)
    {
        var per = weights.Length / channels;
        var q = new sbyte[weights.Length];
        var scales = new float[channels];
        for (var c = 0; c < channels; c++)
        {
            var row = weights.Slice(c * per, per);
            var max = 0f;
            foreach (var v in row) max = Math.Max(max, Math.Abs(v));
            var s = max == 0f ? 1f : max / 127f;
            scales[c] = s;
            for (var j = 0; j < per; j++) q[c * per + j] = (sbyte)Math.Clamp(Math.Round(row[j] / s, MidpointRounding.ToEven), -127, 127);
        }
        return (q, scales);
    }

    /// <summary>
    /// Converts <paramref name="graph"/> (float32) in place to QDQ int8 and returns the rules applied (also recorded in
    /// its metadata). Calls <see cref="Int8Options.Calibrator"/> once with the float32 graph (BatchNormalization folded,
    /// opset raised) and every activation tensor to quantise as an output.
    /// </summary>
    /// <exception cref="ArgumentException">No calibrator was given.</exception>
    /// <exception cref="NotSupportedException">Control flow, or weights in external files.</exception>
    public static PrecisionConversion Apply(OnnxGraph graph, Int8Options options)
    {
        var calibrator = options.Calibrator ?? throw new ArgumentException($"{graph.Origin}: int8 quantisation needs calibration images (Int8Options.Calibrator).");
        var g = graph.Proto.Graph;
        if (g.Node.FirstOrDefault(n => n.OpType is "If" or "Loop" or "Scan") is { } flow)
            throw new NotSupportedException($"{graph.Origin}: node '{flow.Name}' is a {flow.OpType}; int8 quantisation handles graphs without control flow only.");
        if (g.Initializer.FirstOrDefault(t => t.DataLocation == TensorProto.Types.DataLocation.External) is { } ext)
            throw new NotSupportedException($"{graph.Origin}: initializer '{ext.Name}' keeps its data in an external file; load the model with its data and save it whole first.");

        var rules = new List<ConversionRule>();
        var opset = graph.DefaultOpset;
        if (opset < MinimumOpset)
        {
            var changes = OnnxOpsetUpgrade.Upgrade(graph.Proto, MinimumOpset, graph.Origin);
            rules.Add(new ConversionRule(ConversionRuleKind.OpsetUpgraded, [$"opset {opset} -> {MinimumOpset}"], changes.Count,
                "per-channel QuantizeLinear/DequantizeLinear need opset 13; nodes whose attributes became inputs rewritten"));
        }
        var restored = RestoreFloat16StoredWeights(g);
        if (restored > 0)
            rules.Add(new ConversionRule(ConversionRuleKind.RestoredFloat32Weights, [$"Cast x{restored}"], restored,
                "float16-stored weights (the deployment build's) read back as float32 initializers, so that their ops can be folded and quantised"));
        var folded = Float16Conversion.FoldBatchNormalization(g);
        if (folded > 0)
            rules.Add(new ConversionRule(ConversionRuleKind.FoldedBatchNormalization, [$"BatchNormalization x{folded}"], folded,
                "folded into the Conv before it in float32, so the Conv's weights are quantised as they run"));

        var plan = new Planner(graph, options).Plan();
        var calibration = calibrator.Collect(CalibrationGraph(graph, plan.Calibrated), plan.Calibrated.Select((_, i) => CalibrationOutputName(i)).ToList());
        if (calibration.Ranges.Count != plan.Calibrated.Count)
            throw new InvalidOperationException($"the calibrator returned {calibration.Ranges.Count} ranges for {plan.Calibrated.Count} tensors.");
        var ranges = new Dictionary<string, TensorRange>();
        for (var i = 0; i < plan.Calibrated.Count; i++) ranges[plan.Calibrated[i]] = calibration.Ranges[i];
        new Writer(graph, plan, ranges).Write(rules);
        var conversion = new PrecisionConversion(ModelPrecision.Int8, "qdq-u8s8", rules) { Calibration = calibration.Record };
        conversion.WriteTo(graph);
        return conversion;
    }

    /// <summary>Replaces each Cast to float32 of a float16 initializer (<see cref="OnnxGraph.StoreWeightsAsFloat16"/>) by a float32
    /// initializer under the Cast's output name. Returns the number replaced.</summary>
    private static int RestoreFloat16StoredWeights(GraphProto g)
    {
        var inits = g.Initializer.ToDictionary(t => t.Name);
        var casts = g.Node.Where(n => n.OpType == "Cast" && n.Attribute.Any(a => a.Name == "to" && a.I == Float)
                                      && inits.TryGetValue(n.Input[0], out var t) && t.DataType == (int)TensorProto.Types.DataType.Float16 && !t.RawData.IsEmpty).ToList();
        foreach (var cast in casts)
        {
            var half = inits[cast.Input[0]];
            var raw = half.RawData.Span;
            var values = new float[raw.Length / 2];
            for (var i = 0; i < values.Length; i++) values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(i * 2)..]);
            g.Initializer.Add(OnnxProto.RawFloats(cast.Output[0], values, half.Dims));
            g.Node.Remove(cast);
        }
        return casts.Count;
    }

    /// <summary>The float32 graph with every tensor in <paramref name="tensors"/> also a graph output (through an Identity named as the tensor is, so graph inputs work too).</summary>
    private static byte[] CalibrationGraph(OnnxGraph graph, IReadOnlyList<string> tensors)
    {
        var copy = OnnxGraph.FromBytes(graph.ToBytes(), graph.Origin);
        var g = copy.Proto.Graph;
        var outputs = g.Output.Select(o => o.Name).ToHashSet();
        for (var i = 0; i < tensors.Count; i++)
        {
            var name = CalibrationOutputName(i);
            var id = new NodeProto { OpType = "Identity", Name = name };
            id.Input.Add(tensors[i]);
            id.Output.Add(name);
            g.Node.Add(id);
            g.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = Float } } });
        }
        return copy.ToBytes();
    }

    /// <summary>The graph output under which the calibration graph exposes the i-th tensor.</summary>
    internal static string CalibrationOutputName(int i) => $"featureonnx_calibration/{i}";

    /// <summary>A quantised node: which of its inputs are activations, weight and bias; the Relu folded into it.</summary>
    private sealed record QuantizedNode(NodeProto Node, IReadOnlyList<int> Activations, int Weight, int Bias, int WeightAxis, NodeProto? FoldedRelu)
    {
        /// <summary>The weight and bias initializers (found through Identity nodes, which exporters add for shared tensors).</summary>
        public TensorProto? WeightTensor { get; init; }
        public TensorProto? BiasTensor { get; init; }
    }

    private sealed record QuantizationPlan(IReadOnlyList<QuantizedNode> Nodes, IReadOnlyList<string> Quantized, IReadOnlyList<string> Calibrated,
        IReadOnlyDictionary<string, string> SharesRangeWith, IReadOnlyDictionary<string, int> KeptFloat);

    private sealed class Planner(OnnxGraph graph, Int8Options options)
    {
        private readonly GraphProto _g = graph.Proto.Graph;
        private readonly Dictionary<string, TensorProto> _inits = graph.Proto.Graph.Initializer.ToDictionary(t => t.Name);
        private readonly HashSet<string> _floatActivations = [];
        private readonly Dictionary<string, List<NodeProto>> _consumers = [];
        private readonly Dictionary<string, NodeProto> _producers = graph.Proto.Graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).GroupBy(x => x.o).ToDictionary(x => x.Key, x => x.First().n);
        private readonly HashSet<string> _graphOutputs = graph.Proto.Graph.Output.Select(o => o.Name).ToHashSet();

        // ops whose float input makes a float output (the activations of a CNN graph)
        private static readonly HashSet<string> FloatOps =
        [
            "Conv", "ConvTranspose", "Gemm", "MatMul", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
            "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
            "BatchNormalization", "Softmax", "Erf", "Sqrt", "Pow", "Exp", "Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
            "Concat", "Pad", "Resize", "Dropout", "LRN", "Slice", "Split", "Gather",
        ];

        public QuantizationPlan Plan()
        {
            foreach (var v in _g.Input.Where(v => !_inits.ContainsKey(v.Name) && v.Type?.TensorType?.ElemType == Float)) _floatActivations.Add(v.Name);
            var hasConvBefore = new HashSet<string>();
            foreach (var n in _g.Node)
            {
                foreach (var i in n.Input.Where(i => i.Length > 0).Distinct())
                    (_consumers.TryGetValue(i, out var l) ? l : _consumers[i] = []).Add(n);
                // a float activation: a float op reading one, or a Cast to float of one (a constant cast, e.g. float16-stored weights, is no activation)
                var isFloat = n.OpType == "Cast" ? n.Attribute.Any(a => a.Name == "to" && a.I == Float) : FloatOps.Contains(n.OpType);
                if (isFloat && n.Input.Any(_floatActivations.Contains)) _floatActivations.Add(n.Output[0]);
                if (n.OpType == "Conv" || n.Input.Any(hasConvBefore.Contains)) foreach (var o in n.Output) hasConvBefore.Add(o);
            }

            // the final pooling: an average pool with no Conv after it (a global pool, or a 7x7 AveragePool over the last map)
            var convAfter = new HashSet<string>();
            foreach (var n in _g.Node.Reverse())
                if (n.OpType == "Conv" || n.Output.Any(convAfter.Contains))
                    foreach (var i in n.Input) convAfter.Add(i);

            var nodes = new List<QuantizedNode>();
            var kept = new Dictionary<string, int>();
            void Keep(string what) => kept[what] = kept.GetValueOrDefault(what) + 1;
            foreach (var n in _g.Node)
            {
                QuantizedNode? q = null;
                switch (n.OpType)
                {
                    case "Conv" when IsActivation(n.Input[0]) && Weight(n.Input[1]) is { Dims.Count: >= 3 } w && (n.Input.Count < 3 || n.Input[2].Length == 0 || Weight(n.Input[2]) is not null):
                        var group = n.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1;
                        if (!hasConvBefore.Contains(n.Input[0]) && !options.QuantizeFirstConv) { Keep("Conv (first)"); break; }
                        if (group > 1 && group == w.Dims[0] && w.Dims[1] == 1 && !options.QuantizeDepthwise) { Keep("Conv (depthwise)"); break; }
                        q = new QuantizedNode(n, [0], 1, n.Input.Count > 2 && n.Input[2].Length > 0 ? 2 : -1, 0, null);
                        break;
                    case "Gemm" when IsActivation(n.Input[0]) && Weight(n.Input[1]) is { Dims.Count: 2 } && (n.Input.Count < 3 || Weight(n.Input[2]) is { Dims.Count: 1 })
                                     && Attr(n, "transA", 0) == 0 && AttrF(n, "alpha") == 1f && AttrF(n, "beta") == 1f:
                        q = new QuantizedNode(n, [0], 1, n.Input.Count > 2 ? 2 : -1, Attr(n, "transB", 0) == 1 ? 0 : 1, null);
                        break;
                    case "MatMul" when IsActivation(n.Input[0]) && Weight(n.Input[1]) is { Dims.Count: 2 }:
                        q = new QuantizedNode(n, [0], 1, -1, 1, null);
                        break;
                    case "Add" when n.Input.Count == 2 && IsActivation(n.Input[0]) && IsActivation(n.Input[1]):
                    case "Concat" when n.Input.All(IsActivation):
                        q = new QuantizedNode(n, Enumerable.Range(0, n.Input.Count).ToList(), -1, -1, 0, null);
                        break;
                    case "MaxPool" when n.Output.Count == 1 && IsActivation(n.Input[0]):
                        q = new QuantizedNode(n, [0], -1, -1, 0, null);
                        break;
                    case "AveragePool" or "GlobalAveragePool" when IsActivation(n.Input[0]):
                        if (options.QuantizeGlobalPool || convAfter.Contains(n.Output[0]) && (n.OpType == "AveragePool" || options.QuantizeSigmoidMul)) q = new QuantizedNode(n, [0], -1, -1, 0, null);
                        else Keep(n.OpType + " (final pooling)");
                        break;
                    case "Sigmoid" when options.QuantizeSigmoidMul && IsActivation(n.Input[0]):
                        q = new QuantizedNode(n, [0], -1, -1, 0, null);
                        break;
                    case "Mul" when options.QuantizeSigmoidMul && n.Input.Count == 2 && IsActivation(n.Input[0]) && IsActivation(n.Input[1]):
                        q = new QuantizedNode(n, [0, 1], -1, -1, 0, null);
                        break;
                    case "Sigmoid" or "Mul" or "HardSigmoid" or "HardSwish" or "Softmax" or "ReduceMean" when IsActivation(n.Input[0]):
                        Keep(n.OpType);
                        break;
                }
                if (q is null) continue;
                q = q with { WeightTensor = q.Weight >= 0 ? Weight(n.Input[q.Weight]) : null, BiasTensor = q.Bias >= 0 ? Weight(n.Input[q.Bias]) : null };
                // a Relu that alone reads the op's output becomes the op's QuantizeLinear with range [0, max]
                if (n.OpType is "Conv" or "Gemm" or "MatMul" or "Add" && !_graphOutputs.Contains(n.Output[0])
                    && _consumers.TryGetValue(n.Output[0], out var readers) && readers is [{ OpType: "Relu" } relu])
                    q = q with { FoldedRelu = relu };
                nodes.Add(q);
            }

            var quantized = new List<string>();
            var seen = new HashSet<string>();
            var shares = new Dictionary<string, string>();
            foreach (var q in nodes)
            {
                foreach (var i in q.Activations) if (seen.Add(q.Node.Input[i])) quantized.Add(q.Node.Input[i]);
                var output = q.FoldedRelu?.Output[0] ?? q.Node.Output[0];
                if (seen.Add(output)) quantized.Add(output);
                // MaxPool's QLinear form needs the same scale and zero point in and out (a max of 8-bit values is one of them)
                if (q.Node.OpType == "MaxPool") shares[output] = q.Node.Input[0];
            }
            var calibrated = quantized.Where(t => !shares.ContainsKey(t)).ToList();
            return new QuantizationPlan(nodes, quantized, calibrated, shares, kept);
        }

        private bool IsActivation(string name) => name.Length > 0 && !_inits.ContainsKey(name) && _floatActivations.Contains(name);

        /// <summary>A float32 weight initializer, directly or through Identity nodes (null for anything else: computed or float16-stored weights stay float32 ops).</summary>
        private TensorProto? Weight(string name)
        {
            for (var hops = 0; hops < 8 && !_inits.ContainsKey(name) && _producers.TryGetValue(name, out var p) && p.OpType == "Identity"; hops++) name = p.Input[0];
            return _inits.TryGetValue(name, out var t) && t.DataType == Float ? t : null;
        }

        private static long Attr(NodeProto n, string name, long fallback) => n.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? fallback;

        private static float AttrF(NodeProto n, string name) => n.Attribute.FirstOrDefault(a => a.Name == name)?.F ?? 1f;
    }

    private sealed class Writer(OnnxGraph graph, QuantizationPlan plan, IReadOnlyDictionary<string, TensorRange> ranges)
    {
        private readonly GraphProto _g = graph.Proto.Graph;
        private readonly HashSet<string> _taken = [];
        private readonly Dictionary<string, (string Scale, string ZeroPoint, float ScaleValue)> _parameters = [];

        public void Write(List<ConversionRule> rules)
        {
            foreach (var t in _g.Initializer) _taken.Add(t.Name);
            foreach (var v in _g.Input) _taken.Add(v.Name);
            foreach (var n in _g.Node) foreach (var o in n.Output) _taken.Add(o);
            var inits = _g.Initializer.ToDictionary(t => t.Name);
            var graphInputs = _g.Input.Select(v => v.Name).ToHashSet();
            // by reference: protobuf messages compare by value, and the nodes are rewired below
            var byNode = new Dictionary<NodeProto, QuantizedNode>(ReferenceEqualityComparer.Instance);
            foreach (var q in plan.Nodes) byNode[q.Node] = q;
            var folded = plan.Nodes.Where(q => q.FoldedRelu is not null).Select(q => q.FoldedRelu!).ToHashSet(ReferenceEqualityComparer.Instance);
            var quantized = plan.Quantized.ToHashSet();

            var nodes = new List<NodeProto>();
            var inputRenames = new Dictionary<string, string>();
            // graph inputs read by quantised ops: Q -> DQ at the start, their readers rewired
            foreach (var t in plan.Quantized.Where(graphInputs.Contains))
            {
                var dq = Unique(t + "/dequantized");
                nodes.AddRange(QdqPair(t, Unique(t + "/quantized"), dq, t));
                inputRenames[t] = dq;
            }
            var removedOutputs = new HashSet<string>();
            var weights = 0;
            foreach (var n in _g.Node)
            {
                if (folded.Contains(n)) continue;
                var quantizedNode = byNode.GetValueOrDefault(n);
                var inputScale = quantizedNode is { Weight: >= 0 } ? Parameters(n.Input[quantizedNode.Activations[0]]).ScaleValue : 0f;
                for (var i = 0; i < n.Input.Count; i++) if (inputRenames.TryGetValue(n.Input[i], out var r)) n.Input[i] = r;
                if (quantizedNode is { } q)
                {
                    if (q.FoldedRelu is { } relu)
                    {
                        removedOutputs.Add(n.Output[0]);
                        n.Output[0] = relu.Output[0];
                    }
                    if (q.Weight >= 0)
                    {
                        nodes.AddRange(QuantizeWeight(n, q, inputScale));
                        weights++;
                    }
                }
                nodes.Add(n);
                foreach (var o in n.Output.Where(quantized.Contains).ToList())
                {
                    var pre = Unique(o + "/float");
                    for (var k = 0; k < n.Output.Count; k++) if (n.Output[k] == o) n.Output[k] = pre;
                    nodes.AddRange(QdqPair(pre, Unique(o + "/quantized"), o, o));
                }
            }
            _g.Node.Clear();
            _g.Node.AddRange(nodes);
            var values = _g.ValueInfo.Where(v => !removedOutputs.Contains(v.Name)).ToList();
            _g.ValueInfo.Clear();
            _g.ValueInfo.AddRange(values);
            var used = nodes.SelectMany(n => n.Input).ToHashSet();
            var keptInits = _g.Initializer.Where(t => used.Contains(t.Name)).ToList();
            _g.Initializer.Clear();
            _g.Initializer.AddRange(keptInits);
            var keptInputs = _g.Input.Where(v => !inits.ContainsKey(v.Name) || used.Contains(v.Name)).ToList();
            _g.Input.Clear();
            _g.Input.AddRange(keptInputs);

            IReadOnlyList<string> OpCounts(IEnumerable<string> ops) =>
                ops.GroupBy(o => o).OrderByDescending(x => x.Count()).ThenBy(x => x.Key, StringComparer.Ordinal).Select(x => $"{x.Key} x{x.Count()}").ToList();
            rules.Add(new ConversionRule(ConversionRuleKind.Int8Compute, OpCounts(plan.Nodes.Select(q => q.Node.OpType)), plan.Nodes.Count,
                "DequantizeLinear -> op -> QuantizeLinear, fused by ONNX Runtime's CPU provider into QLinearConv, QLinearAdd, ... (8-bit arithmetic, int32 accumulation)"));
            var relus = plan.Nodes.Count(q => q.FoldedRelu is not null);
            if (relus > 0)
                rules.Add(new ConversionRule(ConversionRuleKind.ReluFolded, [$"Relu x{relus}"], relus,
                    "the op's QuantizeLinear takes the Relu's range [0, max] with zero point 0, which clips the negatives as Relu does"));
            if (plan.KeptFloat.Count > 0)
                rules.Add(new ConversionRule(ConversionRuleKind.Float32Kept, plan.KeptFloat.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} x{kv.Value}").ToList(), plan.KeptFloat.Values.Sum(),
                    "kept float32 (after a DequantizeLinear): the final pooling, so that the features are float32 averages of 8-bit activations, and what the options keep out of int8"));
            rules.Add(new ConversionRule(ConversionRuleKind.Int8Weights, [], weights,
                "weights int8, symmetric per output channel (zero point 0, [-127, 127]); biases int32 with scale = input scale x weight scale"));
            rules.Add(new ConversionRule(ConversionRuleKind.QuantizedActivations, [], plan.Quantized.Count,
                "activations uint8 per tensor: scale = (max - min) / 255 and zero point from the calibrated range (widened to hold 0)"));
        }

        private (string Scale, string ZeroPoint, float ScaleValue) Parameters(string tensor)
        {
            var key = plan.SharesRangeWith.TryGetValue(tensor, out var other) ? other : tensor;
            if (_parameters.TryGetValue(key, out var p)) return p;
            var (scale, zp) = ActivationParameters(ranges[key]);
            var scaleName = Unique(key + "/scale");
            var zpName = Unique(key + "/zero_point");
            _g.Initializer.Add(OnnxProto.RawFloats(scaleName, [scale], []));
            _g.Initializer.Add(OnnxProto.Uint8Scalar(zpName, zp));
            return _parameters[key] = (scaleName, zpName, scale);
        }

        private IEnumerable<NodeProto> QdqPair(string from, string quantized, string to, string tensor)
        {
            var (scale, zp, _) = Parameters(tensor);
            yield return Node("QuantizeLinear", [from, scale, zp], quantized, null);
            yield return Node("DequantizeLinear", [quantized, scale, zp], to, null);
        }

        private IEnumerable<NodeProto> QuantizeWeight(NodeProto n, QuantizedNode q, float inputScale)
        {
            var w = q.WeightTensor!;
            var values = Float16Conversion.WeightValues(w);
            var axis = q.WeightAxis;
            var channels = (int)w.Dims[axis];
            // quantise along axis 0: transpose a [K, N] matrix's columns into rows first
            float[] rows = values;
            if (axis == 1)
            {
                var k = (int)w.Dims[0];
                rows = new float[values.Length];
                for (var i = 0; i < k; i++) for (var j = 0; j < channels; j++) rows[j * k + i] = values[i * channels + j];
            }
            var (qRows, scales) = QuantizeWeights(rows, channels);
            var qValues = qRows;
            if (axis == 1)
            {
                var k = (int)w.Dims[0];
                qValues = new sbyte[qRows.Length];
                for (var i = 0; i < k; i++) for (var j = 0; j < channels; j++) qValues[i * channels + j] = qRows[j * k + i];
            }
            var baseName = w.Name;
            var qName = Unique(baseName + "/int8");
            _g.Initializer.Add(OnnxProto.Raw(qName, TensorProto.Types.DataType.Int8, MemoryMarshalBytes(qValues), w.Dims));
            var sName = Unique(baseName + "/scale");
            _g.Initializer.Add(OnnxProto.RawFloats(sName, scales, [channels]));
            var zName = Unique(baseName + "/zero_point");
            _g.Initializer.Add(OnnxProto.Raw(zName, TensorProto.Types.DataType.Int8, new byte[channels], [channels]));
            var wOut = Unique(baseName + "/dequantized");
            yield return Node("DequantizeLinear", [qName, sName, zName], wOut, axis);
            n.Input[q.Weight] = wOut;

            if (q.Bias < 0) yield break;
            var b = q.BiasTensor!;
            var bias = Float16Conversion.WeightValues(b);
            var bScales = scales.Select(s => s * inputScale).ToArray();
            var bq = new byte[bias.Length * 4];
            for (var c = 0; c < bias.Length; c++)
                BinaryPrimitives.WriteInt32LittleEndian(bq.AsSpan(c * 4), (int)Math.Clamp(Math.Round(bias[c] / bScales[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue));
            var bName = Unique(b.Name + "/int32");
            _g.Initializer.Add(OnnxProto.Raw(bName, TensorProto.Types.DataType.Int32, bq, [bias.Length]));
            var bsName = Unique(b.Name + "/scale");
            _g.Initializer.Add(OnnxProto.RawFloats(bsName, bScales, [bias.Length]));
            var bzName = Unique(b.Name + "/zero_point");
            _g.Initializer.Add(OnnxProto.Raw(bzName, TensorProto.Types.DataType.Int32, new byte[bias.Length * 4], [bias.Length]));
            var bOut = Unique(b.Name + "/dequantized");
            yield return Node("DequantizeLinear", [bName, bsName, bzName], bOut, 0);
            n.Input[q.Bias] = bOut;
        }

        private static byte[] MemoryMarshalBytes(sbyte[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

        private NodeProto Node(string op, string[] inputs, string output, int? axis)
        {
            var node = new NodeProto { OpType = op, Name = Unique("featureonnx_" + op + "/" + output) };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            if (axis is { } a) node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = a });
            return node;
        }

        private string Unique(string wanted)
        {
            var name = wanted;
            for (var i = 1; !_taken.Add(name); i++) name = $"{wanted}_{i}";
            return name;
        }
    }
}
