using FeatureOnnx.Models;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FeatureOnnx.Tests.Models;

/// <summary>The one ONNX normalise step (uint8 input graph and end-to-end models both build it) against the formula by hand.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class GraphBuilderTests
{
    [Theory]
    [InlineData(TensorLayout.Nchw, ChannelOrder.Rgb)]
    [InlineData(TensorLayout.Nchw, ChannelOrder.Bgr)]
    [InlineData(TensorLayout.Nhwc, ChannelOrder.Bgr)]
    public void Normalize_computes_ToTensor_and_Normalize_in_float32(TensorLayout layout, ChannelOrder order)
    {
        // A 1x2x2x3 crop by hand: pixel (y, x) channel c holds 10 * (2y + x) + c, with both ends of the byte range.
        byte[] crop = [0, 1, 2, 10, 11, 12, 20, 21, 22, 253, 254, 255];
        var spec = PreprocessSpec.TorchvisionImageNet with { ChannelOrder = order };
        var builder = new GraphBuilder("test/");
        var output = builder.Normalize("crop", spec, layout);
        var g = new GraphProto { Name = "normalize" };
        g.Input.Add(OnnxProto.Value("crop", DataType.Uint8, [1, 2, 2, 3]));
        g.Node.AddRange(builder.Nodes);
        g.Initializer.AddRange(builder.Initializers);
        g.Output.Add(OnnxProto.Value(output, DataType.Float));
        using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(OnnxProto.Model(g, opset: 7, irVersion: 3, "test")));
        using var x = OrtValue.CreateTensorValueFromMemory(crop, [1, 2, 2, 3]);
        using var y = session.Run(new RunOptions(), ["crop"], [x], [output]);
        var actual = y[0].GetTensorDataAsSpan<float>().ToArray();

        // torch: (p / 255 - mean[c]) / std[c] in float32, mean and std in RGB order, then the channel order and layout.
        var expected = new float[12];
        for (var p = 0; p < 4; p++)
            for (var c = 0; c < 3; c++)
            {
                var rgb = order == ChannelOrder.Bgr ? 2 - c : c;
                var value = (crop[p * 3 + rgb] / 255f - spec.Mean[rgb]) / spec.Std[rgb];
                expected[layout == TensorLayout.Nchw ? c * 4 + p : p * 3 + c] = value;
            }
        Assert.Equal(layout == TensorLayout.Nchw ? new long[] { 1, 3, 2, 2 } : [1, 2, 2, 3], y[0].GetTensorTypeAndShape().Shape);
        Assert.Equal(expected, actual); // exact: the same float32 operations in the same order
        // Pixel (0, 0)'s red value is 0: (0 - 0.485) / 0.229 wherever the layout and order put red.
        var red = layout == TensorLayout.Nhwc ? (order == ChannelOrder.Bgr ? 2 : 0) : (order == ChannelOrder.Bgr ? 2 * 4 : 0);
        Assert.Equal(-0.485f / 0.229f, actual[red]);
    }
}
