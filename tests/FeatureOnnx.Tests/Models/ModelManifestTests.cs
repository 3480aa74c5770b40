using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

[Trait("Category", TestCategory.Fast)]
public sealed class ModelManifestTests
{
    [Fact]
    public void Builtin_manifest_reads_every_field()
    {
        var m = new ModelCatalog().Resolve("resnet18");
        Assert.Equal("OriginalInput", m.Input.Name);
        Assert.Equal([3, 224, 224], m.Input.Shape);
        Assert.Equal(256, m.Preprocess.ResizeShorter);
        Assert.Equal(Interpolation.Bilinear, m.Preprocess.Interpolation);
        Assert.Equal(1f, m.Preprocess.PixelDivisor);
        Assert.Equal(ChannelOrder.Rgb, m.Preprocess.ChannelOrder);
        Assert.Equal(["pooled", "layer1", "layer2", "layer3", "layer4"], m.Outputs.Select(o => o.Name));
        Assert.True(m.GetOutput("pooled").Flatten);
        Assert.Equal(["pooled"], m.ResolveDefaultOutputs());
        Assert.Equal("MIT", m.Provenance!.License);
    }

    [Fact]
    public void Errors_name_the_file_and_the_field()
    {
        using var tmp = new Fixtures.TempDir();
        var path = tmp.File("bad.json");
        File.WriteAllText(path, """
            { "name": "bad", "source": { "file": "x.onnx" }, "input": { "name": "in", "shape": [3, 224, 224] },
              "preprocess": { "resizeShorter": 256, "centerCrop": [224, 224], "mean": [0.5, 0.5], "std": [1, 1, 1] },
              "outputs": [ { "name": "out" } ] }
            """);
        var e = Assert.Throws<ManifestException>(() => ModelManifest.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'preprocess.mean'", e.Message);
    }

    [Fact]
    public void Crop_must_match_the_input_size()
    {
        var m = Fixtures.PreprocessOnly(PreprocessSpec.TorchvisionImageNet) with { Preprocess = PreprocessSpec.TorchvisionImageNet with { CenterCrop = [256, 256] } };
        Assert.Contains("differs from the input's spatial size", Assert.Throws<ManifestException>(m.Validate).Message);
    }

    [Fact]
    public void Unknown_model_lists_the_builtin_ones()
    {
        var e = Assert.Throws<ManifestException>(() => new ModelCatalog().Resolve("resnet-18"));
        Assert.Contains("resnet18", e.Message);
    }

    [Fact]
    public void Manifest_round_trips_through_json()
    {
        using var tmp = new Fixtures.TempDir();
        var m = new ModelCatalog().Resolve("resnet18");
        m.Save(tmp.File("m.json"));
        var back = ModelManifest.Load(tmp.File("m.json"));
        Assert.Equal(m.Preprocess, back.Preprocess with { Mean = m.Preprocess.Mean, Std = m.Preprocess.Std, CenterCrop = m.Preprocess.CenterCrop });
        Assert.Equal(m.Preprocess.Mean, back.Preprocess.Mean);
        Assert.Equal(m.Outputs.Select(o => (o.Name, o.TensorName, o.Flatten)), back.Outputs.Select(o => (o.Name, o.TensorName, o.Flatten)));
    }
}
