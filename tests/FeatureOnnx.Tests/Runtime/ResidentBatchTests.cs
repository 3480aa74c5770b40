using System.Runtime.InteropServices;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using OrtElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace FeatureOnnx.Tests.Runtime;

/// <summary><see cref="FeatureSession.CreateResident"/> (input and outputs kept in the provider's memory) against <see cref="FeatureSession.Run"/>.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class ResidentBatchTests
{
    private static readonly ModelCatalog Catalog = new();
    private static readonly string[] Photos = ["opencv_baboon.jpg", "skimage_chelsea.png", "opencv_fruits.jpg"];

    [Fact]
    public void Resident_runs_equal_Run_bit_for_bit_on_the_cpu_and_repeat_exactly()
    {
        var manifest = Catalog.Resolve("resnet18");
        var pre = new ImagePreprocessor(manifest);
        var batch = new float[Photos.Length * pre.SlotLength];
        for (var i = 0; i < Photos.Length; i++)
            pre.Preprocess(File.ReadAllBytes(Fixtures.PathOf("photos", Photos[i])), batch.AsSpan(i * pre.SlotLength, pre.SlotLength));
        using var session = new FeatureSession(PreparedModel.Build(manifest, ["pooled", "layer1", "layer4"], Catalog));
        using var plain = session.Run(batch, Photos.Length);

        using var resident = session.CreateResident(MemoryMarshal.AsBytes(batch.AsSpan()), Photos.Length);
        Assert.Equal("host memory", resident.Memory);
        // The input was copied: what the caller does with its array afterwards changes nothing.
        Array.Clear(batch);
        resident.Run();
        var first = resident.CopyOutputs();
        resident.Run();
        var second = resident.CopyOutputs();
        Assert.Equal(session.OutputNames.Order(), first.Keys.Order());
        foreach (var name in session.OutputNames)
        {
            Assert.Equal(plain.Shape(name), first[name].Shape);
            Assert.True(plain.Values(name).SequenceEqual(first[name].Values), $"{name} differs from Run");
            Assert.Equal(first[name].Values, second[name].Values);
        }
        Assert.Equal(new long[] { 3, 64, 56, 56 }, first["layer1"].Shape);
    }

    [SkippableFact]
    public void On_cuda_the_batch_lives_in_device_memory_and_matches_plain_runs()
    {
        var missing = ProviderDiagnostics.WhyCudaCannotRun();
        Skip.If(missing is not null, $"no CUDA here ({missing})");
        var manifest = Catalog.Resolve("resnet18");
        var pre = new ImagePreprocessor(manifest);
        var batch = new float[Photos.Length * pre.SlotLength];
        for (var i = 0; i < Photos.Length; i++)
            pre.Preprocess(File.ReadAllBytes(Fixtures.PathOf("photos", Photos[i])), batch.AsSpan(i * pre.SlotLength, pre.SlotLength));
        using var session = new FeatureSession(PreparedModel.Build(manifest, ["pooled", "layer2"], Catalog), new SessionSettings { Provider = ExecutionProviderKind.Cuda });
        using var plain = session.Run(batch, Photos.Length);
        using var resident = session.CreateResident(MemoryMarshal.AsBytes(batch.AsSpan()), Photos.Length);
        Assert.Equal("CUDA device 0 memory", resident.Memory);
        resident.Run();
        resident.Run();
        var outputs = resident.CopyOutputs();
        foreach (var name in session.OutputNames)
        {
            Assert.Equal(plain.Shape(name), outputs[name].Shape);
            var cosine = Fixtures.Cosine(plain.Values(name), outputs[name].Values);
            Assert.True(cosine >= 0.9999999, $"{name}: cosine {cosine}");
        }
    }

    [Fact]
    public void Resident_refuses_a_short_buffer()
    {
        var manifest = Catalog.Resolve("resnet18");
        using var session = new FeatureSession(PreparedModel.Build(manifest, ["pooled"], Catalog));
        Assert.Throws<ArgumentException>(() => session.CreateResident(new byte[session.SlotBytes], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.CreateResident(new byte[session.SlotBytes], 0));
    }

    [Fact]
    public void An_output_whose_shape_is_not_fixed_but_for_the_batch_is_refused_by_name()
    {
        // Identity x [N, c] -> y [N, c]: the buffers are allocated before the first run, so c must be known.
        var graph = new GraphProto { Name = "dynamic" };
        graph.Input.Add(Value("x", new TensorShapeProto.Types.Dimension { DimParam = "N" }, new TensorShapeProto.Types.Dimension { DimParam = "c" }));
        graph.Output.Add(Value("y", new TensorShapeProto.Types.Dimension { DimParam = "N" }, new TensorShapeProto.Types.Dimension { DimParam = "c" }));
        var node = new NodeProto { OpType = "Identity" };
        node.Input.Add("x");
        node.Output.Add("y");
        graph.Node.Add(node);
        var model = new ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = 17 });
        using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(model));
        var e = Assert.Throws<ArgumentException>(() =>
            new ResidentBatch(session, ExecutionProviderKind.Cpu, 0, "x", [3], OrtElementType.Float, ["y"], new byte[2 * 3 * sizeof(float)], 2));
        Assert.Contains("output 'y' has shape [-1, -1]", e.Message);
    }

    private static ValueInfoProto Value(string name, params TensorShapeProto.Types.Dimension[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.AddRange(dims);
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
