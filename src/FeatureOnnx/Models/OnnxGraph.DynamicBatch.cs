namespace FeatureOnnx.Models;

// Dynamic batch: axis 0 of every input and output made symbolic.
public sealed partial class OnnxGraph
{
    /// <summary>
    /// Makes axis 0 of every input, output and recorded intermediate a symbolic dimension named
    /// <paramref name="dimName"/>. Returns warnings for Reshape nodes whose constant target shape pins the batch.
    /// </summary>
    public IReadOnlyList<string> MakeBatchDynamic(string dimName = "N")
    {
        var inits = Graph.Initializer.Select(i => i.Name).ToHashSet();
        foreach (var v in Graph.Input.Where(i => !inits.Contains(i.Name)).Concat(Graph.ValueInfo).Concat(Graph.Output))
        {
            var dims = v.Type?.TensorType?.Shape?.Dim;
            if (dims is null || dims.Count == 0) continue;
            dims[0].ClearValue();
            dims[0].DimParam = dimName;
        }
        var warnings = new List<string>();
        var constants = Graph.Initializer.ToDictionary(i => i.Name);
        foreach (var node in Graph.Node.Where(n => n.OpType == "Reshape" && n.Input.Count > 1))
        {
            if (constants.TryGetValue(node.Input[1], out var shape) && shape.Int64Data.Count > 0 && shape.Int64Data[0] > 0)
                warnings.Add($"Reshape '{node.Name}' has a constant target shape starting with {shape.Int64Data[0]}: batches other than {shape.Int64Data[0]} will fail. Re-export with a dynamic batch axis.");
        }
        return warnings;
    }
}
