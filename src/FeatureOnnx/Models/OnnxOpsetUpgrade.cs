using Onnx;

namespace FeatureOnnx.Models;

/// <summary>
/// Raises the default-domain opset of a graph (e.g. the built-in ResNet18's opset 8) to a newer one, so that
/// operators only the newer opset has (Resize with antialias, opset 18) can run in the same graph. Only operators
/// whose meaning at inference is known to be kept are accepted: unchanged ones as they are, and the few whose
/// attributes became inputs (Split, Squeeze, Unsqueeze, Reduce*, Pad, Slice, Clip) or whose old options must hold
/// (BatchNormalization with spatial=1 and one output, Dropout as identity) rewritten. Anything else is refused,
/// naming the operator, rather than guessed.
/// </summary>
internal static class OnnxOpsetUpgrade
{
    /// <summary>Oldest source opset accepted: from 7 on, broadcasting and BatchNormalization's is_test are as today.</summary>
    public const int MinimumSourceOpset = 7;

    // Operators whose inference semantics, with the attributes an exporter writes, are the same from opset 7 to 18
    // (later versions only added types, negative axes or optional attributes whose defaults keep the old behaviour).
    private static readonly HashSet<string> Unchanged =
    [
        "Abs", "Add", "And", "ArgMax", "ArgMin", "AveragePool", "Cast", "Ceil", "Concat", "Constant", "Conv", "Div", "Elu",
        "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool",
        "Greater", "HardSigmoid", "Identity", "LeakyRelu", "Less", "Log", "LRN", "MatMul", "Max", "MaxPool", "Mean", "Min",
        "Mul", "Neg", "Not", "Or", "Pow", "PRelu", "Reciprocal", "Relu", "Reshape", "Selu", "Shape", "Sigmoid", "Sign",
        "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Tanh", "Transpose", "Where",
    ];

    // Reduce operators whose 'axes' attribute became an input, with the opset where that happened.
    private static readonly Dictionary<string, int> AxesBecameInput = new()
    {
        ["Squeeze"] = 13, ["Unsqueeze"] = 13, ["ReduceSum"] = 13,
        ["ReduceMean"] = 18, ["ReduceMax"] = 18, ["ReduceMin"] = 18, ["ReduceProd"] = 18, ["ReduceL1"] = 18,
        ["ReduceL2"] = 18, ["ReduceLogSum"] = 18, ["ReduceLogSumExp"] = 18, ["ReduceSumSquare"] = 18,
    };

    /// <summary>
    /// Rewrites <paramref name="model"/> in place to default opset <paramref name="target"/> and IR version 8 or
    /// later. Initializers listed as graph inputs (old IR versions do that) are removed from the inputs, so that
    /// ONNX Runtime still treats them as constants.
    /// </summary>
    /// <returns>A line per node rewritten, e.g. "Split 'x': 'split' attribute moved to an input".</returns>
    /// <exception cref="InvalidDataException">An operator has no verified upgrade; the message names it and the fix.</exception>
    public static IReadOnlyList<string> Upgrade(ModelProto model, int target, string origin)
    {
        var defaultImport = model.OpsetImport.FirstOrDefault(o => string.IsNullOrEmpty(o.Domain) || o.Domain == "ai.onnx");
        var source = (int)(defaultImport?.Version ?? target);
        var changes = new List<string>();
        if (source > target)
            throw new InvalidDataException($"{origin}: opset {source} is newer than {target}; nothing to upgrade.");
        if (source < MinimumSourceOpset)
            throw new InvalidDataException($"{origin}: opset {source} is older than {MinimumSourceOpset}; re-export the backbone at opset {target} (torch.onnx.export(..., opset_version={target})).");
        var graph = model.Graph;
        if (source < target)
        {
            var refused = new List<string>();
            var taken = new HashSet<string>(graph.Initializer.Select(i => i.Name).Concat(graph.Node.SelectMany(n => n.Output)));
            for (var i = 0; i < graph.Node.Count; i++)
            {
                var node = graph.Node[i];
                if (!string.IsNullOrEmpty(node.Domain) && node.Domain != "ai.onnx") continue;
                if (node.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0))
                {
                    refused.Add($"{node.OpType} '{node.Name}' (holds a subgraph)");
                    continue;
                }
                var problem = UpgradeNode(graph, node, source, target, taken, changes);
                if (problem is not null) refused.Add($"{node.OpType} '{node.Name}' ({problem})");
            }
            if (refused.Count > 0)
                throw new InvalidDataException(
                    $"{origin}: cannot raise opset {source} to {target} without risking a change of meaning: {string.Join("; ", refused.Distinct().Take(8))}" +
                    $"{(refused.Count > 8 ? $" and {refused.Count - 8} more" : "")}. Re-export the backbone at opset {target} (export-scripts/export.py --opset {target}).");
            if (defaultImport is null)
                model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = target });
            else
                defaultImport.Version = target;
        }
        if (model.IrVersion < 8) model.IrVersion = 8;
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet();
        var keep = graph.Input.Where(v => !initializers.Contains(v.Name)).ToList();
        graph.Input.Clear();
        graph.Input.AddRange(keep);
        return changes;
    }

    private static string? UpgradeNode(GraphProto graph, NodeProto node, int source, int target, HashSet<string> taken, List<string> changes)
    {
        var op = node.OpType;
        if (Unchanged.Contains(op)) return null;
        switch (op)
        {
            case "BatchNormalization":
            {
                var spatial = node.Attribute.FirstOrDefault(a => a.Name == "spatial");
                if (spatial is not null && spatial.I != 1) return "spatial=0 has no equivalent after opset 8";
                if (node.Output.Count(o => o.Length > 0) > 1) return "training outputs (mean, variance) are not kept after opset 13";
                if (spatial is not null)
                {
                    node.Attribute.Remove(spatial);
                    changes.Add($"BatchNormalization '{node.Name}': attribute spatial=1 dropped (the only behaviour from opset 9)");
                }
                return null;
            }
            case "Split" when source < 13:
            {
                var split = node.Attribute.FirstOrDefault(a => a.Name == "split");
                if (split is not null)
                {
                    node.Attribute.Remove(split);
                    AddInput(graph, node, OnnxProto.Int64s(Unique(taken, node.Name + "_split"), split.Ints.ToArray()), 1);
                    changes.Add($"Split '{node.Name}': attribute split moved to an input");
                }
                else if (target >= 18)
                {
                    node.Attribute.Add(OnnxProto.Int("num_outputs", node.Output.Count));
                    changes.Add($"Split '{node.Name}': num_outputs={node.Output.Count} made explicit");
                }
                return null;
            }
            case "Split":
                if (target >= 18 && node.Input.Count < 2)
                    node.Attribute.Add(OnnxProto.Int("num_outputs", node.Output.Count));
                return null;
            case "Dropout":
                if (node.Output.Count > 1 && node.Output[1].Length > 0 && graph.Node.Any(n => n.Input.Contains(node.Output[1])))
                    return "its mask output is used";
                while (node.Output.Count > 1) node.Output.RemoveAt(node.Output.Count - 1);
                while (node.Input.Count > 1) node.Input.RemoveAt(node.Input.Count - 1);
                node.Attribute.Clear();
                node.OpType = "Identity";
                changes.Add($"Dropout '{node.Name}': identity at inference");
                return null;
            case "Pad" when source < 11:
            {
                var pads = node.Attribute.FirstOrDefault(a => a.Name == "pads");
                var value = node.Attribute.FirstOrDefault(a => a.Name == "value");
                if (pads is null) return "no pads";
                node.Attribute.Remove(pads);
                if (value is not null) node.Attribute.Remove(value);
                AddInput(graph, node, OnnxProto.Int64s(Unique(taken, node.Name + "_pads"), pads.Ints.ToArray()), 1);
                if (value is not null && value.F != 0f)
                    AddInput(graph, node, OnnxProto.Floats(Unique(taken, node.Name + "_value"), [value.F], []), 2);
                changes.Add($"Pad '{node.Name}': attributes moved to inputs");
                return null;
            }
            case "Pad":
                return null;
            case "Slice" when source < 10:
            {
                var starts = node.Attribute.FirstOrDefault(a => a.Name == "starts");
                var ends = node.Attribute.FirstOrDefault(a => a.Name == "ends");
                var axes = node.Attribute.FirstOrDefault(a => a.Name == "axes");
                if (starts is null || ends is null) return "no starts/ends";
                node.Attribute.Clear();
                AddInput(graph, node, OnnxProto.Int64s(Unique(taken, node.Name + "_starts"), starts.Ints.ToArray()), 1);
                AddInput(graph, node, OnnxProto.Int64s(Unique(taken, node.Name + "_ends"), ends.Ints.ToArray()), 2);
                if (axes is not null) AddInput(graph, node, OnnxProto.Int64s(Unique(taken, node.Name + "_axes"), axes.Ints.ToArray()), 3);
                changes.Add($"Slice '{node.Name}': attributes moved to inputs");
                return null;
            }
            case "Slice":
                return null;
            case "Clip" when source < 11:
            {
                var min = node.Attribute.FirstOrDefault(a => a.Name == "min");
                var max = node.Attribute.FirstOrDefault(a => a.Name == "max");
                node.Attribute.Clear();
                AddInput(graph, node, OnnxProto.Floats(Unique(taken, node.Name + "_min"), [min?.F ?? float.MinValue], []), 1);
                AddInput(graph, node, OnnxProto.Floats(Unique(taken, node.Name + "_max"), [max?.F ?? float.MaxValue], []), 2);
                changes.Add($"Clip '{node.Name}': min/max moved to inputs (float input assumed)");
                return null;
            }
            case "Clip":
                return null;
        }
        if (AxesBecameInput.TryGetValue(op, out var since))
        {
            if (source >= since) return null;
            var axes = node.Attribute.FirstOrDefault(a => a.Name == "axes");
            if (axes is not null)
            {
                node.Attribute.Remove(axes);
                AddInput(graph, node, OnnxProto.Int64s(Unique(taken, node.Name + "_axes"), axes.Ints.ToArray()), 1);
                changes.Add($"{op} '{node.Name}': attribute axes moved to an input");
            }
            return null;
        }
        return $"no verified upgrade from opset {source}";
    }

    private static void AddInput(GraphProto graph, NodeProto node, TensorProto constant, int position)
    {
        graph.Initializer.Add(constant);
        while (node.Input.Count < position) node.Input.Add("");
        if (node.Input.Count == position) node.Input.Add(constant.Name);
        else node.Input[position] = constant.Name;
    }

    private static string Unique(HashSet<string> taken, string name)
    {
        var candidate = "opset_upgrade/" + name;
        for (var k = 1; !taken.Add(candidate); k++) candidate = $"opset_upgrade/{name}_{k}";
        return candidate;
    }
}
