using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Tests.Models;

/// <summary>The uint8 input graph: the same values as <see cref="TensorWriter"/>, alone and in front of the built-in resnet18.</summary>
public sealed class Uint8InputGraphTests(ITestOutputHelper output)
{
    private static readonly ModelCatalog Catalog = new();

    [Trait("Category", TestCategory.Fast)]
    [Theory]
    [InlineData(TensorLayout.Nchw, ChannelOrder.Rgb)]
    [InlineData(TensorLayout.Nchw, ChannelOrder.Bgr)]
    [InlineData(TensorLayout.Nhwc, ChannelOrder.Rgb)]
    [InlineData(TensorLayout.Nhwc, ChannelOrder.Bgr)]
    public void Graph_alone_writes_exactly_what_TensorWriter_writes(TensorLayout layout, ChannelOrder order)
    {
        const int h = 5, w = 7;
        var spec = PreprocessSpec.TorchvisionImageNet with { ChannelOrder = order, CenterCrop = [h, w], Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
        var manifest = Fixtures.PreprocessOnly(spec, h, w) with
        {
            Input = new ModelInput { Name = "input", Layout = layout, Shape = layout == TensorLayout.Nchw ? [3, h, w] : [h, w, 3] },
        };
        var graph = Uint8InputGraph.Build(manifest, opset: 17, irVersion: 8);
        var random = new Random(6);
        var crops = new byte[2 * h * w * 3];
        random.NextBytes(crops);
        crops[0] = 0; crops[1] = 255; // both ends of the range

        using var session = new InferenceSession(graph.ToBytes());
        using var x = OrtValue.CreateTensorValueFromMemory(crops, [2, h, w, 3]);
        using var y = session.Run(new RunOptions(), [Uint8InputGraph.InputName(manifest.Input)], [x], [session.OutputMetadata.Keys.Single()]);
        var actual = y[0].GetTensorDataAsSpan<float>().ToArray();

        var writer = new TensorWriter(manifest.Input, spec);
        var expected = new float[2 * writer.SlotLength];
        for (var i = 0; i < 2; i++)
            writer.Write(crops.AsSpan(i * h * w * 3, h * w * 3), expected.AsSpan(i * writer.SlotLength, writer.SlotLength));
        Assert.Equal(layout == TensorLayout.Nchw ? new long[] { 2, 3, h, w } : [2, h, w, 3], y[0].GetTensorTypeAndShape().Shape);
        Assert.Equal(expected, actual); // exact: the same float32 operations in the same order
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Identity_steps_are_left_out()
    {
        // The built-in resnet18 takes 0..255 RGB NCHW: only Cast and Transpose remain.
        var manifest = Catalog.Resolve("resnet18");
        var graph = Uint8InputGraph.Build(manifest, opset: 8, irVersion: 3);
        Assert.Equal(["Cast", "Transpose"], graph.Proto.Graph.Node.Select(n => n.OpType));
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Opsets_before_7_are_refused()
    {
        var e = Assert.Throws<InvalidDataException>(() => Uint8InputGraph.Build(Catalog.Resolve("resnet18"), opset: 6, irVersion: 3));
        Assert.Contains("opset 6", e.Message);
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Prepared_model_takes_uint8_nhwc_crops()
    {
        var prepared = PreparedModel.Build(Catalog.Resolve("resnet18"), ["pooled"], Catalog, new PrepareOptions { Uint8Input = true });
        Assert.True(prepared.Uint8Input);
        Assert.Equal("OriginalInput_uint8", prepared.InputName);
        Assert.Equal([224, 224, 3], prepared.InputSlotShape);
        using var session = new FeatureSession(prepared);
        Assert.Equal(224 * 224 * 3, session.SlotBytes);
        var e = Assert.Throws<InvalidOperationException>(() => session.Run(new float[session.SlotLength], 1));
        Assert.Contains("RunBound", e.Message);
    }

    [Trait("Category", TestCategory.Slow)]
    [Fact]
    public void Builtin_resnet18_uint8_input_gives_the_float_path_features_on_every_photo()
    {
        var photos = Uint8Agreement.Photos();
        var r = Uint8Agreement.Compare(Catalog.Resolve("resnet18"), Catalog, ["pooled", "layer2"], photos);
        output.WriteLine($"built-in resnet18, {r.Rows} photos, pooled + layer2: min cosine {r.MinCosine:0.000000000}, max relative diff {r.MaxRelativeDiff:g3}, bit-identical {r.BitIdentical}");
        Assert.True(r.MinCosine >= 0.9999999, $"cosine {r.MinCosine}");
        Assert.True(r.MaxRelativeDiff <= 1e-6, $"max relative diff {r.MaxRelativeDiff}");
    }
}
