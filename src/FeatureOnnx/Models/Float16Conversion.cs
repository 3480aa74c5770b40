using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Models;

/// <summary>What <see cref="Float16Conversion.Apply"/> writes.</summary>
public enum Float16Form
{
    /// <summary>float16 weights and compute, float32 islands and float32 input/outputs: the graph a GPU runs.</summary>
    Float16,

    /// <summary>
    /// The same graph kept in float32, with every tensor that would be float16 rounded to float16 (a Cast to float16 and
    /// back after each float16 op; weights rounded in place): it runs on the CPU provider and predicts the accuracy of
    /// <see cref="Float16"/>, whose GPU kernels also accumulate in float32 and round each op's output once.
    /// </summary>
    Twin,
}

/// <summary>Options for <see cref="Float16Conversion.Apply"/>; the defaults are the rules <c>--precision fp16</c> uses.</summary>
public sealed record Float16Options
{
    /// <summary>Float16 graph or its float32 twin. Default: <see cref="Float16Form.Float16"/>.</summary>
    public Float16Form Form { get; init; } = Float16Form.Float16;

    /// <summary>
    /// Op types computed in float32 (the islands). Default: <see cref="Float16Conversion.DefaultFloat32Ops"/>. An empty
    /// set gives the old all-float16 rules of <c>export.py --fp16</c> (every listed op in float16), kept to show why the islands exist.
    /// </summary>
    public IReadOnlySet<string> Float32Ops { get; init; } = Float16Conversion.DefaultFloat32Ops;

    /// <summary>Fold a BatchNormalization into the Conv before it (in float32, before rounding). Default: true.</summary>
    public bool FoldBatchNormalization { get; init; } = true;
}

/// <summary>Which rule a <see cref="ConversionRule"/> reports (camelCase in JSON).</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<ConversionRuleKind>))]
public enum ConversionRuleKind
{
    /// <summary>BatchNormalization folded into the preceding Conv's weights and bias (float32 arithmetic).</summary>
    FoldedBatchNormalization,
    /// <summary>Ops computed in float16 (float16 inputs, weights and outputs).</summary>
    Float16Compute,
    /// <summary>Data-movement ops that keep the precision of their input (no Cast either side).</summary>
    FollowsInput,
    /// <summary>Sigmoid(x) whose only consumers compute x * Sigmoid(x) (SiLU/Swish) runs in float16, as PyTorch's autocast runs silu.</summary>
    SwishInFloat16,
    /// <summary>Ops kept in float32 because float16 loses accuracy there (reductions, exponentials, normalisations).</summary>
    Float32Island,
    /// <summary>Ops kept in float32 because the conversion does not know them to be safe in float16.</summary>
    Float32Unlisted,
    /// <summary>Casts inserted where float16 and float32 regions meet (graph input and outputs included).</summary>
    BoundaryCast,
    /// <summary>Float32 weight tensors stored as float16 (rounded in place for the twin).</summary>
    Float16Weights,
    /// <summary>Twin only: Cast to float16 and back inserted after float16 ops, so their outputs are rounded as float16 would be.</summary>
    RoundedOutputs,
    /// <summary>int8: weights stored as float16 with a Cast back (the deployment build's storage) read back as float32 initializers before quantising.</summary>
    RestoredFloat32Weights,
    /// <summary>int8: the graph's default opset raised (QuantizeLinear/DequantizeLinear per channel need opset 13).</summary>
    OpsetUpgraded,
    /// <summary>int8: ops run on 8-bit integers (DequantizeLinear -> op -> QuantizeLinear, fused by ONNX Runtime into QLinear* kernels).</summary>
    Int8Compute,
    /// <summary>int8: a Relu after a quantised op folded into that op's QuantizeLinear (range [0, max], zero point 0 clips the negatives).</summary>
    ReluFolded,
    /// <summary>int8: ops kept in float32 on purpose (the final pooling; the first conv, depthwise convs, SiLU and gates when <see cref="Int8Options"/> says so).</summary>
    Float32Kept,
    /// <summary>int8: weights stored as int8, symmetric per output channel (zero point 0), biases as int32 (scale = input scale x weight scale).</summary>
    Int8Weights,
    /// <summary>int8: activations quantised to 8 bits per tensor, with scale and zero point from calibration.</summary>
    QuantizedActivations,
}

/// <summary>One rule the conversion applied: what, to which op types, on how many nodes (or tensors), and why.</summary>
/// <param name="Kind">The rule.</param>
/// <param name="Ops">Op types it touched, with counts (e.g. "Conv x20"); empty where it is not about ops.</param>
/// <param name="Count">Nodes (tensors for <see cref="ConversionRuleKind.Float16Weights"/>) it applied to.</param>
/// <param name="Reason">Why, in one line.</param>
public sealed record ConversionRule(ConversionRuleKind Kind, IReadOnlyList<string> Ops, int Count, string Reason);

/// <summary>Writes an enum as its camelCase name in every JSON file (manifests, run.json, report.json), whatever the serialiser's options.</summary>
public sealed class CamelCaseEnumConverter<T>() : JsonStringEnumConverter<T>(JsonNamingPolicy.CamelCase) where T : struct, Enum;

/// <summary>The precision a model runs at and the rules that made it (run.json and <c>inspect</c> show it).</summary>
/// <param name="Precision">The precision converted to (fp16).</param>
/// <param name="Form">What was written (e.g. "float16", "float16-twin").</param>
/// <param name="Rules">The rules applied, in order.</param>
public sealed record PrecisionConversion(ModelPrecision Precision, string Form, IReadOnlyList<ConversionRule> Rules)
{
    /// <summary>int8: the calibration that set the activation ranges (method, images, their hash); null for other precisions.</summary>
    public CalibrationRecord? Calibration { get; init; }

    /// <summary>Metadata key under which a converted model records this (JSON).</summary>
    public const string MetadataKey = "featureonnx.precision";

    private static readonly JsonSerializerOptions Json = new(ModelManifest.JsonOptions) { WriteIndented = false };

    private static JsonTypeInfo<PrecisionConversion> TypeInfo => (JsonTypeInfo<PrecisionConversion>)Json.GetTypeInfo(typeof(PrecisionConversion));

    /// <summary>As JSON, for the model's metadata.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, TypeInfo);

    /// <summary>What a converted model recorded, or null for a model this library did not convert.</summary>
    public static PrecisionConversion? ReadFrom(OnnxGraph graph)
    {
        var entry = graph.Proto.MetadataProps.FirstOrDefault(e => e.Key == MetadataKey);
        return entry is null ? null : JsonSerializer.Deserialize(entry.Value, TypeInfo);
    }

    internal void WriteTo(OnnxGraph graph)
    {
        var entry = graph.Proto.MetadataProps.FirstOrDefault(e => e.Key == MetadataKey);
        if (entry is null) graph.Proto.MetadataProps.Add(new StringStringEntryProto { Key = MetadataKey, Value = ToJson() });
        else entry.Value = ToJson();
    }

    /// <summary>One line per rule, for <c>inspect</c> and logs.</summary>
    public IEnumerable<string> Describe() =>
        Rules.Select(r => $"{r.Kind}: {r.Count}{(r.Ops.Count > 0 ? " (" + string.Join(", ", r.Ops) + ")" : "")}: {r.Reason}")
            .Concat(Calibration is { } c ? [c.Describe()] : []);
}

/// <summary>
/// Converts a float32 graph to float16 compute the way PyTorch's autocast runs a model: convolutions, matrix products,
/// cheap element-wise ops and SiLU (x * Sigmoid(x)) in float16; reductions (GlobalAveragePool, AveragePool, Reduce*), exponentials (Sigmoid,
/// Softmax, Exp, Log, Pow, ...), normalisations (BatchNormalization not folded, LayerNormalization, InstanceNormalization,
/// GroupNormalization) and Resize in float32; unknown ops in float32; data movement (Reshape, Flatten, Concat, ...) in
/// whatever its input is. Graph input and outputs stay float32. Casts go only where the two regions meet, one per
/// tensor and target type, shared by all consumers. One set of rules for every model: the built-in resnet18,
/// export.py exports and a user's ONNX.
/// </summary>
public static class Float16Conversion
{
    /// <summary>Op types kept in float32 by default, with the reason of <see cref="ConversionRuleKind.Float32Island"/>.</summary>
    public static readonly IReadOnlySet<string> DefaultFloat32Ops = new HashSet<string>
    {
        // reductions: sums of many float16 values lose the small terms (efficientnet's squeeze-excitation pools)
        "GlobalAveragePool", "AveragePool", "GlobalLpPool", "LpPool", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceProd", "CumSum",
        // exponentials and powers: float16's range (65504) and precision break on their inputs (autocast's float32 list)
        "Sigmoid", "Softmax", "LogSoftmax", "Exp", "Log", "Pow", "Reciprocal", "Sqrt", "Softplus", "Erf",
        // normalisations: mean and variance over many values
        "BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization", "LpNormalization", "MeanVarianceNormalization",
        // Resize/Upsample: their scales/roi inputs must stay float32, and the op is memory-bound (little to gain)
        "Resize", "Upsample",
    };

    /// <summary>Op types computed in float16 (ONNX Runtime's CUDA provider has float16 kernels for each).</summary>
    public static readonly IReadOnlySet<string> Float16Ops = new HashSet<string>
    {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Clip", "HardSigmoid", "HardSwish", "Tanh",
        "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Neg", "Abs", "MaxPool", "BatchNormalization", "Sigmoid",
        "GlobalAveragePool", "AveragePool", "ReduceMean", "ReduceSum", "Softmax", "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Erf",
        "LayerNormalization", "InstanceNormalization", "Dropout",
    };

    /// <summary>Data-movement ops: they run in the precision of their float input, adding no Cast.</summary>
    public static readonly IReadOnlySet<string> FollowOps = new HashSet<string>
    {
        "Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather", "Pad",
        "Tile", "Expand", "DepthToSpace", "SpaceToDepth",
    };

    /// <summary>Ops that read any element type and output no float (their float input needs no Cast).</summary>
    private static readonly HashSet<string> AnyTypeOps = ["Shape", "Size"];

    private static readonly HashSet<string> ControlFlowOps = ["If", "Loop", "Scan"];

    /// <summary>Changes whenever the rules change, so cached conversions made by older rules are not reused.</summary>
    public const int RulesVersion = 2;

    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Float16 = (int)TensorProto.Types.DataType.Float16;

    /// <summary>Converts <paramref name="graph"/> in place and returns the rules applied (also recorded in its metadata).</summary>
    /// <exception cref="NotSupportedException">The graph has control flow (If/Loop/Scan) or weights in external files.</exception>
    public static PrecisionConversion Apply(OnnxGraph graph, Float16Options? options = null)
    {
        options ??= new Float16Options();
        var g = graph.Proto.Graph;
        var flow = g.Node.FirstOrDefault(n => ControlFlowOps.Contains(n.OpType));
        if (flow is not null)
            throw new NotSupportedException($"{graph.Origin}: node '{flow.Name}' is a {flow.OpType}; float16 conversion handles graphs without control flow only.");
        if (g.Initializer.FirstOrDefault(t => t.DataLocation == TensorProto.Types.DataLocation.External) is { } ext)
            throw new NotSupportedException($"{graph.Origin}: initializer '{ext.Name}' keeps its data in an external file; load the model with its data and save it whole first.");

        var rules = new List<ConversionRule>();
        if (options.FoldBatchNormalization)
        {
            var folded = FoldBatchNormalization(g);
            if (folded > 0)
                rules.Add(new ConversionRule(ConversionRuleKind.FoldedBatchNormalization, [$"BatchNormalization x{folded}"], folded,
                    "folded into the Conv before it in float32, as ONNX Runtime does for float32; no normalisation left to run in float16"));
        }
        new Rewriter(graph, options).Run(rules);
        var conversion = new PrecisionConversion(ModelPrecision.Fp16, options.Form == Float16Form.Twin ? "float16-twin" : "float16", rules);
        conversion.WriteTo(graph);
        return conversion;
    }

    /// <summary>Rounds a float32 value to the nearest float16 (ties to even), as a Cast to float16 does.</summary>
    public static float Round(float value) => (float)(Half)value;

    private enum Held { Float, Half }

    private enum NodeClass { NoFloat, Float16, Swish, Follow, Island, Unlisted }

    private sealed class Rewriter(OnnxGraph graph, Float16Options options)
    {
        private readonly GraphProto _g = graph.Proto.Graph;
        private readonly bool _twin = options.Form == Float16Form.Twin;
        private readonly Dictionary<string, int> _types = [];
        private readonly Dictionary<string, Held> _held = [];
        private readonly Dictionary<(string, Held), string> _converted = [];
        private readonly Dictionary<string, TensorProto> _initializers = [];
        private readonly HashSet<string> _taken = [];
        private readonly List<NodeProto> _nodes = [];
        private readonly HashSet<string> _roundedWeights = [];
        private readonly Dictionary<string, List<NodeProto>> _consumers = [];
        private readonly HashSet<string> _graphOutputs = [];
        private int _casts;
        private int _roundedOutputs;

        public void Run(List<ConversionRule> rules)
        {
            foreach (var t in _g.Initializer) { _initializers[t.Name] = t; _types[t.Name] = t.DataType; _taken.Add(t.Name); }
            foreach (var v in _g.Input.Where(v => !_initializers.ContainsKey(v.Name)))
            {
                _types[v.Name] = v.Type?.TensorType?.ElemType ?? 0;
                _taken.Add(v.Name);
            }
            foreach (var n in _g.Node) foreach (var o in n.Output) _taken.Add(o);
            foreach (var n in _g.Node)
                foreach (var i in n.Input.Where(i => i.Length > 0).Distinct())
                    (_consumers.TryGetValue(i, out var list) ? list : _consumers[i] = []).Add(n);
            foreach (var o in _g.Output) _graphOutputs.Add(o.Name);
            foreach (var name in _types.Keys.Where(k => _types[k] == Float)) _held[name] = Held.Float;

            var counts = new Dictionary<NodeClass, Dictionary<string, int>>();
            foreach (var node in _g.Node.ToList())
            {
                InferOutputTypes(node);
                var cls = Classify(node);
                if (cls != NodeClass.NoFloat)
                {
                    counts.TryAdd(cls, []);
                    counts[cls][node.OpType] = counts[cls].GetValueOrDefault(node.OpType) + 1;
                }
                Rewrite(node, cls);
            }
            ConvertGraphOutputs();
            _g.Node.Clear();
            _g.Node.AddRange(_nodes);
            if (!_twin) RetypeValueInfo();
            RemoveUnusedInitializers();

            void Add(NodeClass cls, ConversionRuleKind kind, string reason)
            {
                if (!counts.TryGetValue(cls, out var ops)) return;
                rules.Add(new ConversionRule(kind, ops.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} x{kv.Value}").ToList(),
                    ops.Values.Sum(), reason));
            }
            Add(NodeClass.Float16, ConversionRuleKind.Float16Compute, "float16 inputs, weights and output; GPU kernels accumulate in float32");
            Add(NodeClass.Swish, ConversionRuleKind.SwishInFloat16, "x * Sigmoid(x) (SiLU): bounded output, computed in float32 inside the kernel; float16 as autocast runs silu, two Casts fewer each (same values: the Mul would round it anyway)");
            Add(NodeClass.Follow, ConversionRuleKind.FollowsInput, "data movement changes no value: runs in its input's precision");
            Add(NodeClass.Island, ConversionRuleKind.Float32Island, "reductions, exponentials and normalisations lose accuracy in float16 (PyTorch autocast keeps them float32)");
            Add(NodeClass.Unlisted, ConversionRuleKind.Float32Unlisted, "not known to be safe in float16: kept float32");
            if (_roundedWeights.Count > 0)
                rules.Add(new ConversionRule(ConversionRuleKind.Float16Weights, [], _roundedWeights.Count,
                    _twin ? "weights of float16 ops rounded to float16 (stored as float32)" : "weights of float16 ops stored as float16 (half the bytes)"));
            if (_casts > 0)
                rules.Add(new ConversionRule(ConversionRuleKind.BoundaryCast, [], _casts,
                    _twin ? "Cast to float16 and back where a float32 tensor enters a float16 op (input, island outputs)" : "Cast where float16 and float32 regions meet (graph input and outputs included)"));
            if (_roundedOutputs > 0)
                rules.Add(new ConversionRule(ConversionRuleKind.RoundedOutputs, [], _roundedOutputs,
                    "Cast to float16 and back after each float16 op: its output is rounded as on the GPU"));
        }

        private bool IsFloat(string tensor) => tensor.Length > 0 && _types.TryGetValue(tensor, out var t) && t == Float;

        private NodeClass Classify(NodeProto node)
        {
            var floatIn = node.Input.Any(IsFloat);
            var floatOut = node.Output.Any(IsFloat);
            if (!floatIn && !floatOut) return NodeClass.NoFloat;
            if (AnyTypeOps.Contains(node.OpType) && !floatOut) return NodeClass.NoFloat;
            if (!floatIn) return NodeClass.NoFloat; // Constant, Cast from ints, ConstantOfShape: float32 sources, cast where consumed
            if (node.OpType == "Sigmoid" && IsSwish(node)) return NodeClass.Swish;
            if (options.Float32Ops.Contains(node.OpType)) return NodeClass.Island;
            if (FollowOps.Contains(node.OpType))
                return node.Input.Where(IsFloat).Any(i => _held[i] == Held.Half) ? NodeClass.Follow : NodeClass.NoFloat;
            if (!Float16Ops.Contains(node.OpType) || node.Domain is { Length: > 0 } and not "ai.onnx") return NodeClass.Unlisted;
            // a weight beyond float16's range would become infinity: keep its op in float32
            if (node.Input.Any(i => _initializers.TryGetValue(i, out var t) && t.DataType == Float && WeightValues(t).Any(v => Math.Abs(v) > (float)Half.MaxValue)))
                return NodeClass.Unlisted;
            return NodeClass.Float16;
        }

        /// <summary>Sigmoid(x) read only by Mul(x, Sigmoid(x)) nodes, not a graph output.</summary>
        private bool IsSwish(NodeProto sigmoid)
        {
            var output = sigmoid.Output[0];
            if (_graphOutputs.Contains(output) || !_consumers.TryGetValue(output, out var readers)) return false;
            return readers.All(m => m.OpType == "Mul" && m.Input.Count == 2 && m.Input.Contains(output) && m.Input.Contains(sigmoid.Input[0]));
        }

        private void Rewrite(NodeProto node, NodeClass cls)
        {
            if (cls == NodeClass.NoFloat)
            {
                // float inputs of type-agnostic ops (Shape) are read as they are held
                _nodes.Add(node);
                foreach (var o in node.Output.Where(IsFloat)) _held[o] = Held.Float;
                return;
            }
            var target = cls is NodeClass.Float16 or NodeClass.Swish or NodeClass.Follow ? Held.Half : Held.Float;
            for (var i = 0; i < node.Input.Count; i++)
                if (IsFloat(node.Input[i]) && _held[node.Input[i]] != target)
                    node.Input[i] = Convert(node.Input[i], target);
            _nodes.Add(node);
            foreach (var o in node.Output.Where(IsFloat))
            {
                _held[o] = target;
                if (_twin && cls is NodeClass.Float16 or NodeClass.Swish)
                {
                    // compute in float32 from rounded inputs, then round the output once, as a float16 kernel does
                    var unrounded = Unique(o + "/unrounded");
                    for (var k = 0; k < node.Output.Count; k++) if (node.Output[k] == o) node.Output[k] = unrounded;
                    _types[unrounded] = Float;
                    _nodes.AddRange(RoundTrip(unrounded, o));
                    _roundedOutputs++;
                }
            }
        }

        /// <summary>The name of <paramref name="tensor"/> held as <paramref name="target"/>: a converted weight or a shared Cast.</summary>
        private string Convert(string tensor, Held target)
        {
            if (_twin && target == Held.Float) return tensor; // rounded values are float32 already
            if (_converted.TryGetValue((tensor, target), out var done)) return done;
            string name;
            if (target == Held.Half && _initializers.TryGetValue(tensor, out var init))
            {
                name = Unique(tensor + (_twin ? "/rounded" : "/float16"));
                var values = WeightValues(init);
                var copy = new TensorProto { Name = name };
                copy.Dims.AddRange(init.Dims);
                if (_twin)
                {
                    copy.DataType = Float;
                    var bytes = new byte[values.Length * 4];
                    for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), Round(values[i]));
                    copy.RawData = ByteString.CopyFrom(bytes);
                }
                else
                {
                    copy.DataType = Float16;
                    var bytes = new byte[values.Length * 2];
                    for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
                    copy.RawData = ByteString.CopyFrom(bytes);
                }
                _g.Initializer.Add(copy);
                _initializers[name] = copy;
                _roundedWeights.Add(tensor);
            }
            else if (_twin)
            {
                name = Unique(tensor + "/rounded");
                _nodes.AddRange(RoundTrip(tensor, name));
                _casts++;
            }
            else
            {
                name = Unique(tensor + (target == Held.Half ? "/float16" : "/float32"));
                _nodes.Add(CastNode(tensor, name, target == Held.Half ? Float16 : Float));
                _casts++;
            }
            _types[name] = Float;
            _held[name] = target;
            return _converted[(tensor, target)] = name;
        }

        private void ConvertGraphOutputs()
        {
            foreach (var output in _g.Output.Where(o => IsFloat(o.Name) && _held[o.Name] == Held.Half))
            {
                if (_twin) continue; // already float32 and rounded
                var inner = Unique(output.Name + "/float16");
                foreach (var n in _nodes)
                {
                    for (var i = 0; i < n.Input.Count; i++) if (n.Input[i] == output.Name) n.Input[i] = inner;
                    for (var i = 0; i < n.Output.Count; i++) if (n.Output[i] == output.Name) n.Output[i] = inner;
                }
                _types[inner] = Float;
                _held[inner] = Held.Half;
                _held[output.Name] = Held.Float;
                _nodes.Add(CastNode(inner, output.Name, Float));
                _casts++;
            }
        }

        private void RetypeValueInfo()
        {
            var kept = new List<ValueInfoProto>();
            foreach (var v in _g.ValueInfo)
            {
                if (v.Type?.TensorType is { } tt && tt.ElemType == Float && _held.TryGetValue(v.Name, out var h) && h == Held.Half)
                    tt.ElemType = Float16;
                kept.Add(v);
            }
            _g.ValueInfo.Clear();
            _g.ValueInfo.AddRange(kept);
        }

        private void RemoveUnusedInitializers()
        {
            var used = _nodes.SelectMany(n => n.Input).ToHashSet();
            foreach (var o in _g.Output) used.Add(o.Name);
            var gone = _g.Initializer.Where(t => !used.Contains(t.Name)).Select(t => t.Name).ToHashSet();
            var kept = _g.Initializer.Where(t => !gone.Contains(t.Name)).ToList();
            _g.Initializer.Clear();
            _g.Initializer.AddRange(kept);
            var inputs = _g.Input.Where(i => !gone.Contains(i.Name)).ToList(); // old IR versions list initializers as inputs
            _g.Input.Clear();
            _g.Input.AddRange(inputs);
        }

        private IEnumerable<NodeProto> RoundTrip(string from, string to)
        {
            var half = Unique(to + "/float16");
            yield return CastNode(from, half, Float16);
            yield return CastNode(half, to, Float);
        }

        private NodeProto CastNode(string from, string to, int type) =>
            OnnxProto.Cast(Unique("featureonnx_cast/" + to), from, to, (TensorProto.Types.DataType)type);

        private string Unique(string wanted)
        {
            var name = wanted;
            for (var i = 1; !_taken.Add(name); i++) name = $"{wanted}_{i}";
            return name;
        }

        /// <summary>Element types of a node's outputs, from its inputs and attributes (enough for CNN graphs).</summary>
        private void InferOutputTypes(NodeProto node)
        {
            int type;
            int Input(int i) => node.Input.Count > i && _types.TryGetValue(node.Input[i], out var t) ? t : 0;
            switch (node.OpType)
            {
                case "Cast": type = (int)(node.Attribute.FirstOrDefault(a => a.Name == "to")?.I ?? 0); break;
                case "Constant":
                    var value = node.Attribute.FirstOrDefault(a => a.Name == "value");
                    type = value?.T is { } t ? t.DataType
                        : node.Attribute.Any(a => a.Name is "value_float" or "value_floats") ? Float
                        : node.Attribute.Any(a => a.Name is "value_int" or "value_ints") ? (int)TensorProto.Types.DataType.Int64 : 0;
                    break;
                case "ConstantOfShape": type = node.Attribute.FirstOrDefault(a => a.Name == "value")?.T?.DataType ?? Float; break;
                case "Shape" or "Size" or "NonZero" or "ArgMax" or "ArgMin": type = (int)TensorProto.Types.DataType.Int64; break;
                case "Equal" or "Greater" or "Less" or "GreaterOrEqual" or "LessOrEqual" or "Not" or "And" or "Or" or "Xor" or "IsNaN" or "IsInf":
                    type = (int)TensorProto.Types.DataType.Bool; break;
                case "Where": type = Input(1); break;
                default: type = Input(0); break;
            }
            foreach (var o in node.Output.Where(o => o.Length > 0)) _types[o] = type;
            if (node.OpType is "MaxPool" && node.Output.Count > 1) _types[node.Output[1]] = (int)TensorProto.Types.DataType.Int64; // indices
            if (node.OpType is "Dropout" && node.Output.Count > 1) _types[node.Output[1]] = (int)TensorProto.Types.DataType.Bool; // mask
        }
    }

    /// <summary>The float32 values of an initializer.</summary>
    internal static float[] WeightValues(TensorProto tensor) => OnnxGraph.FloatValues(tensor, tensor.Dims.Aggregate(1L, (a, d) => a * d));

    /// <summary>
    /// Folds each BatchNormalization (inference form, per-channel) into the Conv that alone feeds it:
    /// W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps). Returns the number folded.
    /// </summary>
    internal static int FoldBatchNormalization(GraphProto g)
    {
        var inits = g.Initializer.ToDictionary(t => t.Name);
        var consumers = new Dictionary<string, int>();
        foreach (var n in g.Node) foreach (var i in n.Input) consumers[i] = consumers.GetValueOrDefault(i) + 1;
        foreach (var o in g.Output) consumers[o.Name] = consumers.GetValueOrDefault(o.Name) + 1;
        var producer = new Dictionary<string, NodeProto>();
        foreach (var n in g.Node) foreach (var o in n.Output) producer[o] = n;
        var taken = inits.Keys.Concat(g.Node.SelectMany(n => n.Output)).Concat(g.Input.Select(i => i.Name)).ToHashSet();
        string Unique(string wanted) { var name = wanted; for (var i = 1; !taken.Add(name); i++) name = $"{wanted}_{i}"; return name; }

        var removed = new HashSet<NodeProto>();
        foreach (var bn in g.Node.Where(n => n.OpType == "BatchNormalization").ToList())
        {
            if (bn.Output.Count != 1 || bn.Input.Count != 5) continue; // training-mode outputs
            if (bn.Attribute.FirstOrDefault(a => a.Name == "spatial") is { I: 0 }) continue; // opset < 9, per-activation statistics
            if (!producer.TryGetValue(bn.Input[0], out var conv) || conv.OpType != "Conv" || consumers.GetValueOrDefault(bn.Input[0]) != 1) continue;
            if (!inits.TryGetValue(conv.Input[1], out var w) || w.DataType != Float || w.Dims.Count < 3) continue;
            var p = new TensorProto[4];
            var ok = true;
            for (var k = 0; k < 4 && ok; k++)
            {
                ok = inits.TryGetValue(bn.Input[k + 1], out var param) && param.DataType == Float;
                if (ok) p[k] = param!;
            }
            TensorProto? b = null;
            if (conv.Input.Count > 2 && conv.Input[2].Length > 0) ok &= inits.TryGetValue(conv.Input[2], out b) && b!.DataType == Float;
            if (!ok) continue;
            var channels = (int)w.Dims[0];
            var gamma = WeightValues(p[0]); var beta = WeightValues(p[1]); var mean = WeightValues(p[2]); var variance = WeightValues(p[3]);
            if (new[] { gamma, beta, mean, variance }.Any(a => a.Length != channels)) continue;
            var eps = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            var weights = WeightValues(w);
            var bias = b is null ? new float[channels] : WeightValues(b);
            var per = weights.Length / channels;
            var newBias = new float[channels];
            for (var c = 0; c < channels; c++)
            {
                var s = gamma[c] / MathF.Sqrt(variance[c] + eps);
                for (var j = 0; j < per; j++) weights[c * per + j] *= s;
                newBias[c] = (bias[c] - mean[c]) * s + beta[c];
            }
            var wName = Unique(w.Name + "/bn_folded");
            var bName = Unique((b?.Name ?? conv.Output[0]) + "/bn_folded_bias");
            g.Initializer.Add(OnnxProto.RawFloats(wName, weights, w.Dims));
            g.Initializer.Add(OnnxProto.RawFloats(bName, newBias, [channels]));
            conv.Input[1] = wName;
            if (conv.Input.Count > 2) conv.Input[2] = bName; else conv.Input.Add(bName);
            conv.Output[0] = bn.Output[0];
            removed.Add(bn);
        }
        if (removed.Count == 0) return 0;
        var nodes = g.Node.Where(n => !removed.Contains(n)).ToList();
        g.Node.Clear();
        g.Node.AddRange(nodes);
        var used = nodes.SelectMany(n => n.Input).ToHashSet();
        var keptInits = g.Initializer.Where(t => used.Contains(t.Name) || g.Output.Any(o => o.Name == t.Name)).ToList();
        var dropped = g.Initializer.Select(t => t.Name).Except(keptInits.Select(t => t.Name)).ToHashSet();
        g.Initializer.Clear();
        g.Initializer.AddRange(keptInits);
        var inputs = g.Input.Where(i => !dropped.Contains(i.Name)).ToList();
        g.Input.Clear();
        g.Input.AddRange(inputs);
        var values = g.ValueInfo.Where(v => !removed.Any(r => r.Input[0] == v.Name)).ToList(); // the Conv's old output is gone
        g.ValueInfo.Clear();
        g.ValueInfo.AddRange(values);
        return removed.Count;
    }
}
