using FeatureOnnx.Models;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Tests.Models;

/// <summary>What ONNX Runtime's CPU provider makes of a graph: the op types of its optimised model (SessionOptions.OptimizedModelFilePath), at the level sessions use.</summary>
internal static class Int8Fusion
{
    public static Dictionary<string, int> OptimizedOpCounts(byte[] model, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_ALL)
    {
        using var dir = new Fixtures.TempDir();
        var path = Path.Combine(dir.Path, "optimized.onnx");
        using (var options = new SessionOptions { GraphOptimizationLevel = level, OptimizedModelFilePath = path })
        using (new InferenceSession(model, options)) { }
        return OnnxGraph.Load(path).Proto.Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
    }
}
