using Onnx;

namespace FeatureOnnx.Models;

/// <summary>A request to make a tensor a graph output.</summary>
/// <param name="Tensor">The existing tensor.</param>
/// <param name="Alias">The output name; may equal <paramref name="Tensor"/>.</param>
/// <param name="Flatten">Flatten to [N, rest] on the way out.</param>
public sealed record OutputRequest(string Tensor, string Alias, bool Flatten = false)
{
    /// <summary>Parses <c>t1,t2=alias</c> as used by <c>--outputs</c> and <c>--layers</c>.</summary>
    public static IReadOnlyList<OutputRequest> ParseList(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(item =>
            {
                var eq = item.IndexOf('=');
                return eq < 0 ? new OutputRequest(item, item) : new OutputRequest(item[..eq].Trim(), item[(eq + 1)..].Trim());
            })
            .ToList();
}

// Output exposure: any tensor as a named output, and the closest names when one does not exist.
public sealed partial class OnnxGraph
{
    /// <summary>
    /// Adds graph outputs for existing tensors, each under its alias (through an Identity node when the alias differs,
    /// or a Flatten node when asked). Existing outputs stay unless <paramref name="replaceOutputs"/> is set.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor does not exist (the message lists close names), or an alias collides.</exception>
    public void ExposeOutputs(IEnumerable<OutputRequest> requests, bool replaceOutputs = false)
    {
        var requestList = requests.ToList();
        var names = AllTensorNames();
        var knownTypes = Graph.Input.Concat(Graph.ValueInfo).Concat(Graph.Output)
            .GroupBy(v => v.Name).ToDictionary(g => g.Key, g => g.First());
        var existing = replaceOutputs ? [] : Graph.Output.ToList();
        var newOutputs = new List<ValueInfoProto>(existing);
        foreach (var r in requestList)
        {
            if (!names.Contains(r.Tensor))
                throw new ArgumentException(UnknownTensorMessage(r.Tensor, names));
            if (newOutputs.Any(o => o.Name == r.Alias) && !(r.Flatten && r.Alias == r.Tensor))
            {
                if (r.Alias == r.Tensor && !r.Flatten) continue; // already an output under its own name
                throw new ArgumentException($"{Origin}: output name '{r.Alias}' is already taken; choose another alias (TENSOR=alias).");
            }
            if (r.Alias != r.Tensor && names.Contains(r.Alias))
                throw new ArgumentException($"{Origin}: alias '{r.Alias}' is already a tensor name in the graph; choose another alias.");
            if (r.Flatten)
            {
                var source = r.Tensor;
                if (r.Alias == r.Tensor)
                {
                    // The flattened output keeps the tensor's name: the unflattened tensor is renamed.
                    source = r.Tensor + "_unflattened";
                    RenameTensor(r.Tensor, source);
                    newOutputs.RemoveAll(o => o.Name == r.Tensor);
                }
                Graph.Node.Add(OnnxProto.Node("Flatten", $"featureonnx_flatten_{r.Alias}", [source], [r.Alias], "", OnnxProto.Int("axis", 1)));
            }
            else if (r.Alias != r.Tensor)
            {
                Graph.Node.Add(OnnxProto.Node("Identity", $"featureonnx_alias_{r.Alias}", [r.Tensor], [r.Alias]));
            }
            names.Add(r.Alias);
            var elemType = knownTypes.TryGetValue(r.Tensor, out var vi) && vi.Type?.TensorType is not null
                ? (TensorProto.Types.DataType)vi.Type.TensorType.ElemType
                : TensorProto.Types.DataType.Float;
            newOutputs.Add(OnnxProto.Value(r.Alias, elemType));
        }
        Graph.Output.Clear();
        Graph.Output.AddRange(newOutputs);
    }

    private void RenameTensor(string from, string to)
    {
        foreach (var node in Graph.Node)
        {
            for (var i = 0; i < node.Input.Count; i++) if (node.Input[i] == from) node.Input[i] = to;
            for (var i = 0; i < node.Output.Count; i++) if (node.Output[i] == from) node.Output[i] = to;
        }
        foreach (var v in Graph.ValueInfo.Where(v => v.Name == from)) v.Name = to;
        var output = Graph.Output.FirstOrDefault(o => o.Name == from);
        if (output is not null) Graph.Output.Remove(output);
    }

    /// <summary>The <paramref name="count"/> tensor names closest to <paramref name="name"/> (edit distance), closest first.</summary>
    public IReadOnlyList<string> ClosestTensorNames(string name, int count) => ClosestNames(name, AllTensorNames(), count);

    private static List<string> ClosestNames(string name, HashSet<string> names, int count) =>
        names.OrderBy(n => EditDistance.Between(n, name, ignoreCase: true)).ThenBy(n => n, StringComparer.Ordinal).Take(count).ToList();

    private string UnknownTensorMessage(string tensor, HashSet<string> names) =>
        $"{Origin}: no tensor named '{tensor}'. Closest names: {string.Join(", ", ClosestNames(tensor, names, 5))}. " +
        $"'featureonnx inspect {Path.GetFileName(Origin)}' lists all {names.Count} tensors.";
}
