using Onnx;

namespace FeatureOnnx.Models;

/// <summary>A tensor of a graph, as <c>featureonnx inspect</c> lists it.</summary>
/// <param name="Name">Tensor name in the graph.</param>
/// <param name="Kind">input, output or intermediate.</param>
/// <param name="Producer">The operator that makes it (empty for graph inputs).</param>
/// <param name="ElementType">ONNX element type name, or null when unknown.</param>
/// <param name="Shape">Dimensions; a symbolic dimension is its name, an unknown one is "?"; null when unknown.</param>
public sealed record TensorDescription(string Name, string Kind, string Producer, string? ElementType, IReadOnlyList<string>? Shape)
{
    /// <summary>Shape as text, e.g. [N,512,7,7].</summary>
    public string ShapeText => Shape is null ? "?" : "[" + string.Join(",", Shape) + "]";
}

// Listing: the tensors of a graph with their types and shapes.
public sealed partial class OnnxGraph
{
    /// <summary>Lists inputs, every node output (intermediate tensors) and the graph outputs, with shapes where the file records them.</summary>
    public IReadOnlyList<TensorDescription> ListTensors()
    {
        var types = new Dictionary<string, ValueInfoProto>();
        foreach (var v in Graph.Input.Concat(Graph.ValueInfo).Concat(Graph.Output))
            types[v.Name] = v;
        var outputs = Graph.Output.Select(o => o.Name).ToHashSet();
        var result = new List<TensorDescription>();
        foreach (var name in InputNames)
            result.Add(Describe(name, "input", "", types));
        foreach (var node in Graph.Node)
            foreach (var o in node.Output.Where(o => o.Length > 0))
                result.Add(Describe(o, outputs.Contains(o) ? "output" : "intermediate", node.OpType, types));
        return result;
    }

    private static TensorDescription Describe(string name, string kind, string producer, Dictionary<string, ValueInfoProto> types)
    {
        if (!types.TryGetValue(name, out var v) || v.Type?.TensorType is null)
            return new TensorDescription(name, kind, producer, null, null);
        var tt = v.Type.TensorType;
        var elem = ((TensorProto.Types.DataType)tt.ElemType).ToString().ToLowerInvariant();
        IReadOnlyList<string>? shape = tt.Shape is null ? null : tt.Shape.Dim.Select(d =>
            d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue.ToString()
            : d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? d.DimParam : "?").ToList();
        return new TensorDescription(name, kind, producer, elem, shape);
    }
}
