using System.Runtime.InteropServices;
using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Runtime;

/// <summary><see cref="FeatureSession.RunBound"/> (IOBinding, reusable input buffer) against <see cref="FeatureSession.Run"/>.</summary>
public sealed class FeatureSessionBindingTests(ITestOutputHelper output)
{
    private static readonly ModelCatalog Catalog = new();
    private static readonly string[] Photos = ["opencv_baboon.jpg", "skimage_chelsea.png", "opencv_fruits.jpg", "skimage_astronaut.png"];

    private static float[] Inputs(ModelManifest manifest)
    {
        var pre = new ImagePreprocessor(manifest);
        var batch = new float[Photos.Length * pre.SlotLength];
        for (var i = 0; i < Photos.Length; i++)
            pre.Preprocess(File.ReadAllBytes(Fixtures.PathOf("photos", Photos[i])), batch.AsSpan(i * pre.SlotLength, pre.SlotLength));
        return batch;
    }

    [Trait("Category", TestCategory.Slow)]
    [Fact]
    public void RunBound_equals_Run_bit_for_bit_on_the_cpu_whatever_the_batch_sizes()
    {
        var manifest = Catalog.Resolve("resnet18");
        var batch = Inputs(manifest);
        using var session = new FeatureSession(PreparedModel.Build(manifest, ["pooled", "layer3"], Catalog));
        var bytes = MemoryMarshal.AsBytes(batch.AsSpan());
        // 2 then 4 (the buffer grows), then 1 and 2 again (rebinding to smaller shapes); earlier outputs stay held.
        var held = new List<(BatchOutputs Outputs, int Offset, int Count)>();
        try
        {
            foreach (var (offset, count) in new[] { (0, 2), (0, 4), (3, 1), (2, 2) })
            {
                var slots = bytes.Slice(offset * session.SlotBytes, count * session.SlotBytes);
                held.Add((session.RunBound(slots, count), offset, count));
            }
            Assert.Equal("host memory", session.BoundInputMemory);
            foreach (var (bound, offset, count) in held)
            {
                var own = batch.AsSpan(offset * session.SlotLength, count * session.SlotLength).ToArray();
                using var plain = session.Run(own, count);
                foreach (var name in session.OutputNames)
                {
                    Assert.Equal(plain.Shape(name), bound.Shape(name));
                    Assert.True(plain.Values(name).SequenceEqual(bound.Values(name)), $"{name}: batch {offset}+{count} differs");
                }
            }
        }
        finally
        {
            foreach (var h in held) h.Outputs.Dispose();
        }
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void RunBound_checks_its_arguments()
    {
        var manifest = Catalog.Resolve("resnet18");
        using var session = new FeatureSession(PreparedModel.Build(manifest, ["pooled"], Catalog));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.RunBound(new byte[session.SlotBytes], 0));
        Assert.Throws<ArgumentException>(() => session.RunBound(new byte[session.SlotBytes], 2));
    }

    [Trait("Category", TestCategory.Fast)]
    [SkippableFact]
    public void On_cuda_the_input_buffer_is_pinned_and_bound_runs_match_plain_runs()
    {
        var missing = ProviderDiagnostics.WhyCudaCannotRun();
        Skip.If(missing is not null, $"no CUDA here ({missing})");
        var manifest = Catalog.Resolve("resnet18");
        var batch = Inputs(manifest);
        var settings = new SessionSettings { Provider = ExecutionProviderKind.Cuda };
        using var session = new FeatureSession(PreparedModel.Build(manifest, ["pooled"], Catalog), settings);
        using var bound = session.RunBound(MemoryMarshal.AsBytes(batch.AsSpan()), Photos.Length);
        using var plain = session.Run(batch, Photos.Length);
        output.WriteLine($"bound input memory: {session.BoundInputMemory}");
        Assert.Equal("CUDA pinned host memory", session.BoundInputMemory);
        var cosine = Fixtures.Cosine(bound.Values("pooled"), plain.Values("pooled"));
        Assert.True(cosine >= 0.9999999, $"cosine {cosine}");

        using var uint8 = new FeatureSession(PreparedModel.Build(manifest, ["pooled"], Catalog, new PrepareOptions { Uint8Input = true }), settings);
        var pre = new ImagePreprocessor(manifest);
        var crops = new byte[Photos.Length * pre.CropLength];
        for (var i = 0; i < Photos.Length; i++)
            pre.Crop(File.ReadAllBytes(Fixtures.PathOf("photos", Photos[i])), crops.AsSpan(i * pre.CropLength, pre.CropLength));
        using var fromCrops = uint8.RunBound(crops, Photos.Length);
        var cropCosine = Fixtures.Cosine(fromCrops.Values("pooled"), plain.Values("pooled"));
        output.WriteLine($"CUDA uint8 vs float: cosine {cropCosine:0.000000000}");
        Assert.True(cropCosine >= 0.9999999, $"cosine {cropCosine}");
    }
}
