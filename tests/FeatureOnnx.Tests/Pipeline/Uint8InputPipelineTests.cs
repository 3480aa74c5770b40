using System.CommandLine;
using FeatureOnnx.Cli;
using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>The extraction pipeline feeding uint8 crops (normalised in the graph) against float32 tensors.</summary>
public sealed class Uint8InputPipelineTests
{
    [Trait("Category", TestCategory.Slow)]
    [Fact]
    public async Task Uint8_input_writes_the_same_rows_as_float_input_and_says_so_in_run_json()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        foreach (var photo in new[] { "opencv_fruits.jpg", "skimage_chelsea.png", "opencv_baboon.jpg" })
            File.Copy(Fixtures.PathOf("photos", photo), Path.Combine(input, photo));
        File.WriteAllText(Path.Combine(input, "broken.jpg"), "not a JPEG"); // a failed slot in the middle of a batch
        var results = new Dictionary<bool, ExtractionResult>();
        foreach (var uint8 in new[] { false, true })
            results[uint8] = await new ExtractionPipeline().RunAsync(new ExtractionOptions
            {
                Inputs = [input],
                OutputDirectory = tmp.File(uint8 ? "u8" : "f32"),
                Layers = ["pooled", "layer2"],
                BatchSize = 2,
                Uint8Input = uint8,
            });
        Assert.False(results[false].Uint8Input);
        Assert.True(results[true].Uint8Input);
        Assert.Equal((3L, 1L), (results[true].Extracted, results[true].Failed));
        Assert.Contains("\"uint8Input\": true", File.ReadAllText(tmp.File("u8/run.json")));
        foreach (var layer in new[] { "pooled", "layer2" })
            Assert.Equal(Fixtures.ReadFloatNpy(tmp.File($"f32/{layer}.npy")).Data, Fixtures.ReadFloatNpy(tmp.File($"u8/{layer}.npy")).Data);
        Assert.Equal(File.ReadAllText(tmp.File("f32/index.csv")), File.ReadAllText(tmp.File("u8/index.csv")));
    }

    [Trait("Category", TestCategory.Slow)]
    [Fact]
    public async Task Default_is_off_on_the_cpu()
    {
        using var tmp = new Fixtures.TempDir();
        var result = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [Fixtures.PathOf("photos", "opencv_fruits.jpg")], OutputDirectory = tmp.Path });
        Assert.False(result.Uint8Input);
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public async Task Uint8_input_with_tensors_in_is_refused()
    {
        using var tmp = new Fixtures.TempDir();
        var e = await Assert.ThrowsAsync<SettingException>(() => new ExtractionPipeline().RunAsync(new ExtractionOptions
        {
            Inputs = [],
            OutputDirectory = tmp.Path,
            TensorsIn = tmp.File("x.npy"),
            Uint8Input = true,
        }));
        Assert.Contains("ExtractionOptions.TensorsIn", e.Message);
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Extract_takes_uint8_input_on_and_refuses_other_words()
    {
        using var dir = new Fixtures.TempDir();
        var root = new RootCommand("test");
        foreach (var command in CommandSet.All()) root.Subcommands.Add(command);
        var photo = Fixtures.PathOf("photos", "opencv_apple.jpg");
        Assert.NotEqual(0, root.Parse(["extract", photo, "-o", dir.File("bad"), "--uint8-input", "yes"]).Invoke());
        Assert.False(File.Exists(dir.File("bad/run.json")));
        Assert.Equal(0, root.Parse(["extract", photo, "-o", dir.File("on"), "--uint8-input", "on", "-q"]).Invoke());
        Assert.Contains("\"uint8Input\": true", File.ReadAllText(dir.File("on/run.json")));
    }
}
