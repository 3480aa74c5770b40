using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Models;

/// <summary>
/// The smallest model that proves an execution provider computes: one 1x1 convolution (cuDNN on CUDA) with weight 2
/// and bias 1 over a [1, 1, 2, 2] input. <see cref="Input"/> gives <see cref="ExpectedOutput"/> exactly in float32.
/// </summary>
internal static class ProviderProbeModel
{
    /// <summary>Input tensor name.</summary>
    public const string InputName = "x";

    /// <summary>Output tensor name.</summary>
    public const string OutputName = "y";

    /// <summary>Input and output shape.</summary>
    public static IReadOnlyList<long> Shape { get; } = [1, 1, 2, 2];

    /// <summary>The values fed.</summary>
    public static IReadOnlyList<float> Input { get; } = [1, 2, 3, 4];

    /// <summary>2x + 1 of <see cref="Input"/>.</summary>
    public static IReadOnlyList<float> ExpectedOutput { get; } = [3, 5, 7, 9];

    /// <summary>The serialized ONNX model (opset 17).</summary>
    public static byte[] Bytes()
    {
        var graph = new GraphProto { Name = "provider_probe" };
        OnnxDim[] shape = [.. Shape.Select(d => (OnnxDim)d)];
        graph.Input.Add(OnnxProto.Value(InputName, TensorProto.Types.DataType.Float, shape));
        graph.Output.Add(OnnxProto.Value(OutputName, TensorProto.Types.DataType.Float, shape));
        graph.Initializer.Add(OnnxProto.Floats("w", [2f], [1, 1, 1, 1]));
        graph.Initializer.Add(OnnxProto.Floats("b", [1f], [1]));
        graph.Node.Add(OnnxProto.Node("Conv", "probe_conv", [InputName, "w", "b"], [OutputName]));
        return OnnxProto.Model(graph, opset: 17, irVersion: 8, "FeatureOnnx provider probe").ToByteArray();
    }
}
