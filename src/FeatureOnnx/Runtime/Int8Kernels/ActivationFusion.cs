using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Runtime.Int8Kernels;

/// <summary>What <see cref="ActivationFusion.Rewrite"/> replaced.</summary>
/// <param name="Silu">QLinearSigmoid + QLinearMul pairs that became one QLinearSiLU.</param>
/// <param name="Gates">Squeeze-excitation QLinearMuls that became QLinearChannelScale.</param>
public sealed record ActivationFusionCount(int Silu, int Gates)
{
    /// <summary>Nothing replaced.</summary>
    public bool IsEmpty => Silu == 0 && Gates == 0;

    /// <summary>The instructions the kernels run with on this CPU (<see cref="QuantizedActivations.Tier"/>): "AVX-512 VBMI" or "AVX2".</summary>
    public string Kernels { get; init; } = QuantizedActivations.Describe(QuantizedActivations.Tier);

    /// <summary>For run.json and logs: "uint8 SiLU x49, squeeze-excitation gates x16 on FeatureOnnx's kernels (AVX-512 VBMI; ai.featureonnx)".</summary>
    public override string ToString() =>
        IsEmpty ? "none" : $"uint8 SiLU x{Silu}, squeeze-excitation gates x{Gates} on FeatureOnnx's kernels ({Kernels}; {ActivationOps.Domain})";
}

/// <summary>
/// Rewrites ONNX Runtime's own optimised graph of an int8 model (saved at level all: QDQ already fused into QLinear*
/// contrib operators, NHWC) so that <see cref="ActivationOps"/> run what its CPU kernels do slowly: each
/// <c>QLinearMul(x, QLinearSigmoid(x))</c> (SiLU) becomes one <c>QLinearSiLU(x)</c>, and each squeeze-excitation
/// <c>QLinearMul(x, gate)</c>, whose gate comes from a channels-last QLinearGlobalAveragePool of that same x through
/// 1x1 convolutions and a sigmoid (so that it is [N,1,1,C]), becomes <c>QLinearChannelScale(x, gate)</c>. Working on
/// the optimised graph, not on the QDQ one, keeps ONNX Runtime's fusions and layout choices: a custom operator in the
/// QDQ graph would stop them (and get layout transposes around it). The result is loaded with optimisation off.
/// </summary>
internal static class ActivationFusion
{
    private const string Microsoft = "com.microsoft";

    /// <summary>Rewrites <paramref name="optimized"/> (an ONNX model ONNX Runtime saved at level all); returns it unchanged when nothing matches.</summary>
    public static (byte[] Model, ActivationFusionCount Count) Rewrite(byte[] optimized)
    {
        var model = ModelProto.Parser.ParseFrom(optimized);
        var graph = model.Graph;
        var producer = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        var readers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (var o in node.Output) producer[o] = node;
            foreach (var i in node.Input) readers[i] = readers.GetValueOrDefault(i) + 1;
        }
        foreach (var o in graph.Output) readers[o.Name] = readers.GetValueOrDefault(o.Name) + 1;
        var dims = graph.Initializer.ToDictionary(t => t.Name, t => t.Dims.ToArray(), StringComparer.Ordinal);

        var replaced = new Dictionary<NodeProto, NodeProto>();
        var dead = new HashSet<NodeProto>();
        int silu = 0, gates = 0;
        foreach (var mul in graph.Node)
        {
            if (!Is(mul, "QLinearMul") || mul.Input.Count != 8) continue;
            // QLinearMul(A, A_scale, A_zero, B, B_scale, B_zero, C_scale, C_zero).
            for (var side = 0; side < 2; side++)
            {
                var (x, xScale, xZero) = (mul.Input[side * 3], mul.Input[side * 3 + 1], mul.Input[side * 3 + 2]);
                var other = mul.Input[(1 - side) * 3];
                if (!producer.TryGetValue(other, out var sigmoid) || !Is(sigmoid, "QLinearSigmoid") || sigmoid.Input.Count != 5 || dead.Contains(sigmoid)) continue;
                if (sigmoid.Input[0] == x && sigmoid.Input[1] == xScale && sigmoid.Input[2] == xZero && readers.GetValueOrDefault(other) == 1)
                {
                    replaced[mul] = Node(ActivationOps.SiLU, mul, [x, xScale, xZero, mul.Input[6], mul.Input[7]]);
                    dead.Add(sigmoid);
                    silu++;
                    break;
                }
                if (IsSqueezeGateOf(sigmoid, x, producer, dims))
                {
                    var g = (1 - side) * 3;
                    replaced[mul] = Node(ActivationOps.ChannelScale, mul, [x, xScale, xZero, mul.Input[g], mul.Input[g + 1], mul.Input[g + 2], mul.Input[6], mul.Input[7]]);
                    gates++;
                    break;
                }
            }
        }
        var count = new ActivationFusionCount(silu, gates);
        if (count.IsEmpty) return (optimized, count);

        var nodes = graph.Node.Where(n => !dead.Contains(n)).Select(n => replaced.GetValueOrDefault(n, n)).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        // The removed sigmoids' scales and zero points: ONNX Runtime would warn about each unused initializer.
        var used = new HashSet<string>(nodes.SelectMany(n => n.Input), StringComparer.Ordinal);
        foreach (var o in graph.Output) used.Add(o.Name);
        var kept = graph.Initializer.Where(t => used.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.AddRange(kept);
        if (model.OpsetImport.All(o => o.Domain != ActivationOps.Domain))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = ActivationOps.Domain, Version = 1 });
        return (model.ToByteArray(), count);
    }

    /// <summary>What an already rewritten graph holds (a cached one).</summary>
    public static ActivationFusionCount Count(byte[] rewritten)
    {
        var graph = ModelProto.Parser.ParseFrom(rewritten).Graph;
        return new ActivationFusionCount(
            graph.Node.Count(n => n.Domain == ActivationOps.Domain && n.OpType == ActivationOps.SiLU),
            graph.Node.Count(n => n.Domain == ActivationOps.Domain && n.OpType == ActivationOps.ChannelScale));
    }

    private static bool Is(NodeProto node, string op) => node.OpType == op && node.Domain == Microsoft;

    private static NodeProto Node(string op, NodeProto replacing, IEnumerable<string> inputs)
    {
        var node = new NodeProto { OpType = op, Domain = ActivationOps.Domain, Name = replacing.Name + "/" + op };
        node.Input.AddRange(inputs);
        node.Output.AddRange(replacing.Output);
        return node;
    }

    /// <summary>
    /// The sigmoid is a squeeze-excitation gate over <paramref name="x"/>: walking up its inputs through 1x1
    /// QLinearConvs and activations reaches <c>QLinearGlobalAveragePool(x, channels_last = 1)</c>.
    /// </summary>
    private static bool IsSqueezeGateOf(NodeProto sigmoid, string x, IReadOnlyDictionary<string, NodeProto> producer, IReadOnlyDictionary<string, long[]> dims)
    {
        var value = sigmoid.Input[0];
        for (var step = 0; step < 8; step++)
        {
            if (!producer.TryGetValue(value, out var node) || node.Domain != Microsoft && node.Domain != ActivationOps.Domain) return false;
            switch (node.OpType)
            {
                case "QLinearGlobalAveragePool":
                    return node.Input[0] == x && node.Attribute.Any(a => a.Name == "channels_last" && a.I == 1);
                case "QLinearConv" when IsPointwise(node, dims):
                case "QLinearSigmoid":
                case "QLinearMul":
                case ActivationOps.SiLU:
                    value = node.Input[0];
                    break;
                default:
                    return false;
            }
        }
        return false;
    }

    /// <summary>A 1x1 convolution: by its kernel_shape, or where that is left out, by its weight's dimensions (QLinearConv's input 3, [O, I/group, kH, kW]).</summary>
    private static bool IsPointwise(NodeProto conv, IReadOnlyDictionary<string, long[]> dims)
    {
        var kernel = conv.Attribute.FirstOrDefault(a => a.Name == "kernel_shape");
        if (kernel is not null) return kernel.Ints.All(k => k == 1);
        return conv.Input.Count > 3 && dims.TryGetValue(conv.Input[3], out var w) && w.Length >= 3 && w[2..].All(k => k == 1);
    }
}
