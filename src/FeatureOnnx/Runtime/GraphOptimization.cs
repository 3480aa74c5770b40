using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Runtime;

/// <summary>ONNX Runtime's graph optimisation levels by the short names FeatureOnnx uses: all, extended, basic, none.</summary>
public static class GraphOptimization
{
    /// <summary>The names <see cref="Parse"/> accepts, fastest first.</summary>
    public static IReadOnlyList<string> Names { get; } = ["all", "extended", "basic", "none"];

    /// <summary>The level named <paramref name="text"/> (case-insensitive).</summary>
    /// <exception cref="FormatException">Not one of <see cref="Names"/>.</exception>
    public static GraphOptimizationLevel Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "all" => GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended" => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic" => GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none" => GraphOptimizationLevel.ORT_DISABLE_ALL,
        _ => throw new FormatException($"use one of {string.Join(", ", Names)}."),
    };

    /// <summary>The short name of <paramref name="level"/> (ONNX Runtime's own name for a level without one).</summary>
    public static string Name(GraphOptimizationLevel level) => level switch
    {
        GraphOptimizationLevel.ORT_ENABLE_ALL => "all",
        GraphOptimizationLevel.ORT_ENABLE_EXTENDED => "extended",
        GraphOptimizationLevel.ORT_ENABLE_BASIC => "basic",
        GraphOptimizationLevel.ORT_DISABLE_ALL => "none",
        _ => level.ToString(),
    };
}
