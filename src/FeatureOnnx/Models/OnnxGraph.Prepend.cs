using Onnx;

namespace FeatureOnnx.Models;

// Composition: a preprocessing graph in front of this one.
public sealed partial class OnnxGraph
{
    /// <summary>
    /// Puts <paramref name="pre"/> in front of this graph: pre's single output feeds this graph's input
    /// <paramref name="inputName"/>, and pre's input becomes the composed graph's input. Pre's internal names are
    /// prefixed to avoid collisions. Both graphs must use the same default opset, so no operator changes meaning.
    /// </summary>
    public void Prepend(OnnxGraph pre, string? inputName = null)
    {
        var preInputs = pre.InputNames;
        if (preInputs.Count != 1 || pre.Graph.Output.Count != 1)
            throw new InvalidDataException($"{pre.Origin}: a prepended graph needs exactly one input and one output (has {preInputs.Count} and {pre.Graph.Output.Count}).");
        if (pre.DefaultOpset != DefaultOpset)
            throw new InvalidDataException($"{pre.Origin}: opset {pre.DefaultOpset} differs from {Origin}'s opset {DefaultOpset}; convert one of them first.");
        var mainInputs = InputNames;
        inputName ??= mainInputs.Count == 1 ? mainInputs[0] : throw new InvalidDataException($"{Origin}: several inputs; say which one the prepended graph feeds.");
        if (!mainInputs.Contains(inputName))
            throw new InvalidDataException($"{Origin}: no input '{inputName}'. Inputs: {string.Join(", ", mainInputs)}.");

        var preIn = preInputs[0];
        var preOut = pre.Graph.Output[0].Name;
        var taken = AllTensorNames();
        foreach (var init in Graph.Initializer) taken.Add(init.Name);
        if (taken.Contains(preIn))
            throw new InvalidDataException($"{pre.Origin}: its input name '{preIn}' is already used in {Origin}.");
        string Rename(string n) => n == preIn || n.Length == 0 ? n : n == preOut ? inputName : "pre/" + n;

        var composedNodes = new List<NodeProto>();
        foreach (var (node, position) in pre.Graph.Node.Select((n, k) => (n, k)))
        {
            var copy = node.Clone();
            copy.Name = "pre/" + (node.Name.Length > 0 ? node.Name : $"{node.OpType}_{position}");
            for (var i = 0; i < copy.Input.Count; i++) copy.Input[i] = Rename(copy.Input[i]);
            for (var i = 0; i < copy.Output.Count; i++) copy.Output[i] = Rename(copy.Output[i]);
            composedNodes.Add(copy);
        }
        composedNodes.AddRange(Graph.Node);
        Graph.Node.Clear();
        Graph.Node.AddRange(composedNodes);
        foreach (var init in pre.Graph.Initializer)
        {
            var copy = init.Clone();
            copy.Name = Rename(init.Name);
            Graph.Initializer.Add(copy);
        }
        foreach (var vi in pre.Graph.ValueInfo.Where(v => v.Name != preOut))
        {
            var copy = vi.Clone();
            copy.Name = Rename(vi.Name);
            Graph.ValueInfo.Add(copy);
        }
        // The old input becomes an intermediate tensor produced by pre; the new input is pre's.
        var oldInput = Graph.Input.First(i => i.Name == inputName);
        Graph.Input.Remove(oldInput);
        Graph.ValueInfo.Add(oldInput);
        Graph.Input.Insert(0, pre.Graph.Input.First(i => i.Name == preIn).Clone());
    }
}
