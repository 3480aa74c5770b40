using System.CommandLine;
using FeatureOnnx.Cli;
using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Cli;

[Trait("Category", TestCategory.Fast)]
public sealed class ExposeCommandTests
{
    private static int Run(params string[] args)
    {
        var root = new RootCommand("test");
        foreach (var command in CommandSet.All()) root.Subcommands.Add(command);
        return root.Parse(args).Invoke();
    }

    private static string BuiltInNetwork()
    {
        var catalog = new ModelCatalog();
        var manifest = catalog.Resolve("resnet18");
        return catalog.LocateFile(manifest.Source, manifest);
    }

    [Fact]
    public void Weights_float16_alone_halves_the_file_and_records_the_conversion()
    {
        using var tmp = new Fixtures.TempDir();
        var source = BuiltInNetwork();
        Assert.Equal(0, Run("expose", source, "--weights", "float16", "-o", tmp.File("half.onnx")));
        var original = new FileInfo(source).Length;
        var half = new FileInfo(tmp.File("half.onnx")).Length;
        Assert.InRange(half, 0.49 * original, 0.51 * original);
        var graph = OnnxGraph.Load(tmp.File("half.onnx"));
        Assert.StartsWith("float16: 22 float32 weight tensors", graph.WeightStorage);
        Assert.Equal(["Pooling395_Output_0"], graph.OutputNames);
        Assert.Null(OnnxGraph.Load(source).WeightStorage);
    }

    [Fact]
    public void Nothing_to_do_or_only_without_outputs_is_an_error()
    {
        using var tmp = new Fixtures.TempDir();
        Assert.NotEqual(0, Run("expose", BuiltInNetwork(), "-o", tmp.File("x.onnx")));
        Assert.NotEqual(0, Run("expose", BuiltInNetwork(), "--weights", "float16", "--only", "-o", tmp.File("y.onnx")));
        Assert.False(File.Exists(tmp.File("x.onnx")) || File.Exists(tmp.File("y.onnx")));
    }
}
