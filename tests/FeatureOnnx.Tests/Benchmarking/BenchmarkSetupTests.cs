using FeatureOnnx.Benchmarking;
using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Benchmarking;

/// <summary>What 'bench' runs, called from C#: prepare (model, precisions, inputs), then run.</summary>
[Trait("Category", TestCategory.Fast)]
public sealed class BenchmarkSetupTests
{
    private static BenchmarkRequest Small => new()
    {
        Model = "resnet18",
        Layers = ["layer1"],
        Options = new BenchmarkOptions { Providers = [ProviderChoice.Cpu], BatchSizes = [1, 3], WarmupIterations = 0, Iterations = 1 },
    };

    [Fact]
    public void Prepare_resolves_the_model_and_draws_as_many_inputs_as_the_largest_batch()
    {
        var setup = BenchmarkSetup.Prepare(Small);
        Assert.Equal("resnet18", setup.Manifest.Name);
        Assert.Equal([ModelPrecision.Fp32], setup.Models.Select(m => m.Model.Precision));
        Assert.Null(setup.Models[0].Uint8Model); // no uint8 path asked for
        Assert.Equal(3, setup.Inputs.Count);
        Assert.Equal(["layer1"], setup.Models[0].Model.Outputs.Select(o => o.Name));
    }

    [Fact]
    public void Fp32_is_the_reference_and_comes_first_whatever_the_order_asked()
    {
        var setup = BenchmarkSetup.Prepare(Small with { Precisions = [ModelPrecision.Fp32], Options = Small.Options with { InputPaths = [BenchmarkInputPath.Uint8] } });
        Assert.Equal([ModelPrecision.Fp32], setup.Models.Select(m => m.Model.Precision));
        Assert.True(setup.Models[0].Uint8Model!.Uint8Input);
    }

    [Fact]
    public void Run_times_every_configuration_and_the_cpu_agrees_exactly_with_itself()
    {
        var report = BenchmarkSetup.Prepare(Small).Run();
        Assert.Equal([1, 3], report.Results.Select(r => r.BatchSize));
        Assert.All(report.Results, r => Assert.All(r.Agreement, a => Assert.Equal(0, a.MaxAbs)));
    }
}
