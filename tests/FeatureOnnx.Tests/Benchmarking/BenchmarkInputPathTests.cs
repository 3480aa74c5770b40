using System.Xml.Linq;
using FeatureOnnx.Benchmarking;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Benchmarking;

/// <summary>
/// One run on the CPU with the four input paths: built-in resnet18 to its default output (pooled); cuda is asked for
/// too, so the run also shows how a skipped provider looks.
/// </summary>
public sealed class FourPathBenchRun() : BenchRunFixture("--model", "resnet18", "--providers", "cpu,cuda", "--batch", "1,3",
    "--input-path", "uint8,device,run,bound", "--warmup", "1", "--iters", "2");

[Trait("Category", TestCategory.Slow)]
public sealed class BenchmarkInputPathTests(FourPathBenchRun run) : IClassFixture<FourPathBenchRun>
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private IEnumerable<BenchmarkResult> Cpu => run.Report!.Results.Where(r => r.Provider == "cpu");

    [Fact]
    public void Each_batch_size_has_a_row_per_path_in_the_order_run_bound_uint8_device()
    {
        Assert.Equal(0, run.ExitCode);
        var report = run.Report!;
        Assert.Equal(["run", "bound", "uint8", "device"], report.InputPaths);
        foreach (var batch in new[] { 1, 3 })
            Assert.Equal(["run", "bound", "uint8", "device"], Cpu.Where(r => r.BatchSize == batch).Select(r => r.InputPath));
        Assert.All(Cpu.Where(r => r.InputPath == "run"), r => Assert.Null(r.BoundInputMemory));
        Assert.All(Cpu.Where(r => r.InputPath != "run"), r => Assert.Equal("host memory", r.BoundInputMemory));
    }

    [Fact]
    public void Bound_uint8_and_device_agree_exactly_with_the_cpu_plain_run()
    {
        foreach (var r in Cpu)
        {
            var a = Assert.Single(r.Agreement);
            Assert.Equal("pooled", a.Output);
            Assert.Equal(new long[] { r.BatchSize, 512 }, a.Shape);
            Assert.Equal(0.0, a.MaxAbs);
            Assert.Equal(1.0, a.MinCosine);
            Assert.StartsWith("cpu run: ", r.AgreementReference);
            Assert.Contains(r.InputPath == "run" ? "its own first run" : "plain float32 Run", r.AgreementReference);
            Assert.True(r.ImagesPerSecond > 0);
        }
    }

    [Fact]
    public void Markdown_json_and_chart_name_the_path()
    {
        var md = File.ReadAllText(run.Dir.File("report.md"));
        Assert.Contains("| provider | precision | batch | path |", md);
        foreach (var path in new[] { "run", "bound", "uint8", "device" })
        {
            Assert.Contains($"| cpu | fp32 | 3 | {path} |", md);
            Assert.Contains($"`{path}` (", md);
        }
        Assert.Contains("Bound input buffer: cpu bound: host memory; cpu uint8: host memory; cpu device: host memory.", md);
        var json = File.ReadAllText(run.Dir.File("report.json"));
        Assert.Contains("\"inputPath\": \"uint8\"", json);
        Assert.Contains("\"inputPaths\": [", json);

        var svg = XDocument.Load(run.Dir.File("report.svg"));
        var lines = svg.Descendants(Svg + "polyline").ToList();
        Assert.Equal(["run", "bound", "uint8", "device"], lines.Select(l => (string?)l.Attribute("data-path")));
        Assert.All(lines, l => Assert.Equal("cpu", (string?)l.Attribute("data-provider")));
        Assert.All(lines, l => Assert.Equal(2, ((string)l.Attribute("points")!).Split(' ').Length));
        var texts = svg.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("cpu uint8", texts);
        Assert.Contains("cpu bound", texts);
        Assert.Contains("cpu device", texts);
        Assert.Equal("2 3", (string?)lines[2].Attribute("stroke-dasharray"));
        Assert.Equal("10 3 2 3", (string?)lines[3].Attribute("stroke-dasharray"));
    }

    [Fact]
    public void Uint8_alone_on_images_is_compared_with_a_reference_session_of_its_own()
    {
        using var dir = new Fixtures.TempDir();
        var photo = Directory.GetFiles(Fixtures.PathOf("photos"), "*.jpg").Order(StringComparer.Ordinal).First();
        Assert.Equal(0, ProviderBenchmarkTests.Cli("bench", "--providers", "cpu", "--images", photo, "--batch", "2", "--input-path", "uint8",
            "--warmup", "0", "--iters", "1", "--layers", "layer1", "-o", dir.Path, "-q"));
        var report = BenchmarkReportWriter.Read(dir.File("report.json"));
        var r = Assert.Single(report.Results);
        Assert.Equal("uint8", r.InputPath);
        Assert.Equal(["uint8"], report.InputPaths);
        Assert.Contains("plain float32 Run", r.AgreementReference);
        var a = Assert.Single(r.Agreement);
        Assert.Equal(new long[] { 2, 64, 56, 56 }, a.Shape);
        Assert.Equal(0.0, a.MaxAbs);
        Assert.Equal(1.0, a.MinCosine);
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("run,run")]
    [InlineData(",")]
    public void Bad_input_paths_fail_before_any_run(string value)
    {
        using var dir = new Fixtures.TempDir();
        Assert.Equal(1, ProviderBenchmarkTests.Cli("bench", "--input-path", value, "--layers", "layer1", "-o", dir.Path, "-q"));
        Assert.False(File.Exists(dir.File("report.json")));
    }
}
