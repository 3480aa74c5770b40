using System.CommandLine;
using FeatureOnnx.Benchmarking;
using FeatureOnnx.Cli;
using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Cli;

/// <summary><c>featureonnx convert</c> and the --precision flags' errors.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class ConvertCommandTests
{
    private static int Run(params string[] args)
    {
        var root = new RootCommand("test");
        foreach (var command in CommandSet.All()) root.Subcommands.Add(command);
        return root.Parse(args).Invoke();
    }

    [Fact]
    public void Convert_writes_an_fp16_manifest_and_onnx_that_records_its_rules()
    {
        using var tmp = new Fixtures.TempDir();
        Assert.Equal(0, Run("convert", "resnet18", "--precision", "fp16", "-o", tmp.File("r18_fp16.json")));
        var manifest = ModelManifest.Load(tmp.File("r18_fp16.json"));
        Assert.Equal(ModelPrecision.Fp16, manifest.Precision);
        var graph = OnnxGraph.Load(tmp.File("r18_fp16.onnx"));
        var conversion = PrecisionConversion.ReadFrom(graph)!;
        Assert.Equal("float16", conversion.Form);
        Assert.Equal(["pooled", "layer1", "layer2", "layer3", "layer4"], graph.OutputNames);
        // the file is about half the float32 network's (float16 weights)
        var catalog = new ModelCatalog();
        var builtIn = catalog.Resolve("resnet18");
        Assert.InRange(new FileInfo(tmp.File("r18_fp16.onnx")).Length, 0.45 * new FileInfo(catalog.LocateFile(builtIn.Source, builtIn)).Length,
            0.6 * new FileInfo(catalog.LocateFile(builtIn.Source, builtIn)).Length);

        // bench runs the converted model at its own precision, compared with its own CPU run; asking for another precision is an error
        Assert.Equal(0, Run("bench", "--model", tmp.File("r18_fp16.json"), "--providers", "cpu", "--batch", "1", "--warmup", "0", "--iters", "2", "-q", "-o", tmp.File("bench")));
        var report = BenchmarkReportWriter.Read(Path.Combine(tmp.File("bench"), "report.json"))!;
        Assert.Equal(["fp16"], report.Precisions);
        Assert.All(report.Results, r => Assert.Equal("fp16", r.Precision));
        Assert.NotEqual(0, Run("bench", "--model", tmp.File("r18_fp16.json"), "--precision", "fp32,fp16", "--providers", "cpu", "-o", tmp.File("bench2")));
    }

    [Fact]
    public void Int8_convert_records_its_calibration_and_extract_without_calibrate_says_what_it_calibrated_on()
    {
        using var tmp = new Fixtures.TempDir();
        var photos = Fixtures.PathOf("photos");
        Assert.Equal(0, Run("convert", "resnet18", "--precision", "int8", "--calibrate", photos, "--calibrate-count", "8", "--calibration", "minmax", "-o", tmp.File("r18_int8.json")));
        var manifest = ModelManifest.Load(tmp.File("r18_int8.json"));
        Assert.Equal(ModelPrecision.Int8, manifest.Precision);
        var conversion = PrecisionConversion.ReadFrom(OnnxGraph.Load(tmp.File("r18_int8.onnx")))!;
        Assert.Equal(("minmax", 8), (conversion.Calibration!.Method, conversion.Calibration.Images));
        Assert.Contains(conversion.Rules, r => r.Kind == ConversionRuleKind.Int8Compute);
        Assert.Equal(0, Run("extract", Fixtures.PathOf("photos", "opencv_apple.jpg"), "--model", tmp.File("r18_int8.json"), "-o", tmp.File("from-converted"), "--quiet"));

        // no --calibrate: the run's own first images, said in run.json (and on the console)
        Assert.Equal(0, Run("extract", photos, "--precision", "int8", "--calibrate-count", "4", "-o", tmp.File("own"), "--quiet"));
        var run = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.File("own"), "run.json"))).RootElement;
        Assert.Equal("int8", run.GetProperty("precision").GetString());
        var calibration = run.GetProperty("precisionConversion").GetProperty("calibration");
        Assert.Equal("the run's own input", calibration.GetProperty("source").GetString());
        Assert.Equal(4, calibration.GetProperty("images").GetInt32());
        Assert.Contains(run.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("no calibration set given", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_precisions_and_combinations_fail_before_any_work()
    {
        using var tmp = new Fixtures.TempDir();
        Assert.NotEqual(0, Run("convert", "resnet18", "--precision", "fp32", "-o", tmp.File("x.json")));
        Assert.NotEqual(0, Run("convert", "resnet18", "--precision", "fp16", "-o", tmp.File("x.onnx")));
        Assert.NotEqual(0, Run("extract", Fixtures.PathOf("photos", "opencv_apple.jpg"), "-o", tmp.File("e"), "--precision", "fp16", "--e2e"));
        Assert.NotEqual(0, Run("bench", "--precision", "fp16,fp16", "-o", tmp.File("b")));
        Assert.NotEqual(0, Run("bench", "--precision", "int4", "-o", tmp.File("b")));
        Assert.NotEqual(0, Run("bench", "--precision", "int8", "-o", tmp.File("b"))); // random pixels are no calibration set
        Assert.NotEqual(0, Run("convert", "resnet18", "--precision", "int8", "-o", tmp.File("x.json"))); // no --calibrate
        Assert.NotEqual(0, Run("extract", Fixtures.PathOf("photos", "opencv_apple.jpg"), "-o", tmp.File("e"), "--calibrate", Fixtures.PathOf("photos"))); // not int8
        Assert.NotEqual(0, Run("extract", Fixtures.PathOf("photos", "opencv_apple.jpg"), "-o", tmp.File("e"), "--precision", "int8", "--calibration", "median"));
        Assert.False(File.Exists(tmp.File("x.json")));
        Assert.False(Directory.Exists(tmp.File("b")) && File.Exists(Path.Combine(tmp.File("b"), "report.json")));
    }
}
