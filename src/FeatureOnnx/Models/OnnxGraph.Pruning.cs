namespace FeatureOnnx.Models;

// Pruning: only what the outputs need stays.
public sealed partial class OnnxGraph
{
    /// <summary>
    /// Removes every node, initializer and recorded intermediate that no graph output depends on. ONNX Runtime runs
    /// the whole graph whatever outputs a caller fetches, so this is what makes "only layer2" cheaper than "pooled".
    /// Returns the number of nodes removed.
    /// </summary>
    public int Prune()
    {
        var needed = Graph.Output.Select(o => o.Name).ToHashSet();
        var keep = new bool[Graph.Node.Count];
        for (var i = Graph.Node.Count - 1; i >= 0; i--)
        {
            var node = Graph.Node[i];
            if (!node.Output.Any(needed.Contains)) continue;
            keep[i] = true;
            foreach (var input in node.Input.Where(s => s.Length > 0)) needed.Add(input);
            foreach (var attr in node.Attribute.Where(a => a.G is not null || a.Graphs.Count > 0))
                foreach (var sub in attr.Graphs.Append(attr.G).Where(g => g is not null))
                    foreach (var n in sub!.Node)
                        foreach (var input in n.Input.Where(s => s.Length > 0)) needed.Add(input); // outer-scope names used by subgraphs
        }
        var kept = Graph.Node.Where((_, i) => keep[i]).ToList();
        var removed = Graph.Node.Count - kept.Count;
        Graph.Node.Clear();
        Graph.Node.AddRange(kept);
        var initializerNames = Graph.Initializer.Select(t => t.Name).ToHashSet();
        Retain(Graph.Initializer, t => needed.Contains(t.Name));
        Retain(Graph.ValueInfo, v => needed.Contains(v.Name));
        // Real inputs stay (callers feed them); initializer-backed inputs (old opsets list them) go with their initializer.
        Retain(Graph.Input, v => !initializerNames.Contains(v.Name) || needed.Contains(v.Name));
        return removed;
    }

    private static void Retain<T>(Google.Protobuf.Collections.RepeatedField<T> field, Func<T, bool> keep)
    {
        var kept = field.Where(keep).ToList();
        field.Clear();
        field.AddRange(kept);
    }
}
