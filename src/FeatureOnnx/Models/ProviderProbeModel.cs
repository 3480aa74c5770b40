using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Models;

/// <summary>
/// The smallest model that proves an execution provider computes: one 1x1 convolution (cuDNN on CUDA) with weight 2
/// and bias 1 over a [1, 1, 2, 2] input. <see cref="Input"/> gives <see cref="ExpectedOutput"/> exactly in float32.
/// </summary>
public static class ProviderProbeModel
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
        graph.Input.Add(Tensor(InputName));
        graph.Output.Add(Tensor(OutputName));
        graph.Initializer.Add(Floats("w", [1, 1, 1, 1], 2f));
        graph.Initializer.Add(Floats("b", [1], 1f));
        var conv = new NodeProto { OpType = "Conv", Name = "probe_conv" };
        conv.Input.AddRange([InputName, "w", "b"]);
        conv.Output.Add(OutputName);
        graph.Node.Add(conv);
        var model = new ModelProto { IrVersion = 8, ProducerName = "FeatureOnnx provider probe", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model.ToByteArray();
    }

    private static ValueInfoProto Tensor(string name)
    {
        var shape = new TensorShapeProto();
        foreach (var d in Shape) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static TensorProto Floats(string name, long[] dims, float value)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.FloatData.Add(value);
        return t;
    }
}
