using System.CommandLine;
using System.Text.Json;
using System.Xml.Linq;
using FeatureOnnx.Benchmarking;
using FeatureOnnx.Cli;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Benchmarking;

/// <summary>One <c>featureonnx bench</c> run into a temporary folder, shared by the tests that read its report.</summary>
public abstract class BenchRunFixture : IDisposable
{
    internal Fixtures.TempDir Dir { get; } = new();

    /// <param name="args">bench's arguments, without -o and -q.</param>
    protected BenchRunFixture(params string[] args)
    {
        ExitCode = ProviderBenchmarkTests.Cli(["bench", .. args, "-o", Dir.Path, "-q"]);
        Report = File.Exists(Dir.File("report.json")) ? BenchmarkReportWriter.Read(Dir.File("report.json")) : null;
    }

    public int ExitCode { get; }

    public BenchmarkReport? Report { get; }

    public void Dispose()
    {
        Dir.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A small run: the built-in resnet18's layer1, batches 1 and 2, cuda asked for too.</summary>
public sealed class SmallBenchRun() : BenchRunFixture("--model", "resnet18", "--providers", "cpu,cuda", "--batch", "1,2",
    "--warmup", "1", "--iters", "2", "--layers", "layer1");

[Trait("Category", TestCategory.Slow)]
public sealed class ProviderBenchmarkTests(SmallBenchRun run) : IClassFixture<SmallBenchRun>
{
    internal static int Cli(params string[] args)
    {
        var root = new RootCommand("test");
        foreach (var command in CommandSet.All()) root.Subcommands.Add(command);
        return root.Parse(args).Invoke();
    }

    private static bool CudaUsable => ProviderDiagnostics.Diagnose().CudaUsable == true;

    [Fact]
    public void Bench_writes_the_three_files()
    {
        Assert.Equal(0, run.ExitCode);
        foreach (var name in BenchmarkReportWriter.FileNames)
            Assert.True(new FileInfo(run.Dir.File(name)).Length > 0, name);
        Assert.Empty(Directory.GetFiles(run.Dir.Path, "*.partial"));
    }

    [Fact]
    public void Report_json_parses_and_the_cpu_agrees_exactly_with_itself()
    {
        using (var json = JsonDocument.Parse(File.ReadAllText(run.Dir.File("report.json"))))
            Assert.Equal(JsonValueKind.Array, json.RootElement.GetProperty("results").ValueKind);
        var report = run.Report!;
        Assert.Equal("completed", report.Status);
        Assert.True(report.RandomInputs);
        Assert.Contains("random", report.Inputs);
        Assert.Equal(["layer1"], report.Outputs);
        var cpu = report.Results.Where(r => r.Provider == "cpu").ToList();
        Assert.Equal([1, 2], cpu.Select(r => r.BatchSize));
        foreach (var r in cpu)
        {
            var a = Assert.Single(r.Agreement);
            Assert.Equal(new long[] { r.BatchSize, 64, 56, 56 }, a.Shape);
            Assert.Equal(0.0, a.MaxAbs);
            Assert.Equal(0.0, a.MaxRelative);
            Assert.Equal(1.0, a.MinCosine);
            Assert.True(r.LatencyMs.Min <= r.LatencyMs.P50 && r.LatencyMs.P50 <= r.LatencyMs.P90 && r.LatencyMs.P90 <= r.LatencyMs.P99 && r.LatencyMs.P99 <= r.LatencyMs.Max);
            Assert.True(r.ImagesPerSecond > 0 && r.SessionCreationMs > 0 && r.FirstRunMs > 0);
            Assert.True(r.HostPeakBytes > 0 && r.HostPeakDeltaBytes <= r.HostPeakBytes);
            Assert.Null(r.DeviceUsedBytes);
            Assert.Equal("n/a on CPU", r.DeviceMemoryNote);
        }
        Assert.True(report.ProcessPeakBytes >= cpu.Max(r => r.HostPeakBytes));
        var md = File.ReadAllText(run.Dir.File("report.md"));
        Assert.Contains("| cpu | fp32 | 2 |", md);
        Assert.Contains("seeded random pixels", md);
    }

    [Fact]
    public void Svg_is_well_formed_with_one_polyline_per_provider_that_ran()
    {
        var svg = XDocument.Load(run.Dir.File("report.svg"));
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(ns + "svg", svg.Root!.Name);
        var ran = run.Report!.Results.Select(r => r.Provider).Distinct().ToList();
        var lines = svg.Descendants(ns + "polyline").ToList();
        Assert.Equal(ran, lines.Select(l => (string?)l.Attribute("data-provider")));
        foreach (var line in lines)
            Assert.Equal(run.Report.BatchSizes.Count, ((string)line.Attribute("points")!).Split(' ').Length);
        var texts = svg.Descendants(ns + "text").Select(t => t.Value).ToList();
        Assert.Contains(texts, t => t.Contains("log2"));
        Assert.Contains(texts, t => t.Contains("images/s"));
    }

    [SkippableFact]
    public void Cuda_is_skipped_with_the_reason_where_it_cannot_load()
    {
        Skip.If(CudaUsable, "CUDA is usable here: the bench measured it");
        var skipped = Assert.Single(run.Report!.Skipped);
        Assert.Equal("cuda:0", skipped.Provider);
        Assert.Null(skipped.BatchSize);
        Assert.Equal(ProviderDiagnostics.Diagnose().CudaError, skipped.Reason);
        Assert.Contains($"**Skipped cuda:0**: {skipped.Reason}", File.ReadAllText(run.Dir.File("report.md")));
        Assert.DoesNotContain(run.Report.Results, r => r.Provider.StartsWith("cuda", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void Cuda_alone_without_cuda_writes_the_reason_and_fails()
    {
        Skip.If(CudaUsable, "CUDA is usable here");
        using var dir = new Fixtures.TempDir();
        Assert.Equal(1, Cli("bench", "--providers", "cuda", "--batch", "1", "--warmup", "0", "--iters", "1", "--layers", "layer1", "-o", dir.Path, "-q"));
        var report = BenchmarkReportWriter.Read(dir.File("report.json"));
        Assert.Empty(report.Results);
        Assert.Equal("cuda:0", Assert.Single(report.Skipped).Provider);
        Assert.Empty(XDocument.Load(dir.File("report.svg")).Descendants(XNamespace.Get("http://www.w3.org/2000/svg") + "polyline"));
    }

    [Fact]
    public void Images_are_preprocessed_as_the_manifest_says_and_reused_to_fill_a_batch()
    {
        using var dir = new Fixtures.TempDir();
        var photo = Directory.GetFiles(Fixtures.PathOf("photos"), "*.jpg").Order(StringComparer.Ordinal).First();
        Assert.Equal(0, Cli("bench", "--providers", "cpu", "--images", photo, "--batch", "3", "--warmup", "0", "--iters", "1", "--layers", "layer1", "-o", dir.Path, "-q"));
        var report = BenchmarkReportWriter.Read(dir.File("report.json"));
        Assert.False(report.RandomInputs);
        Assert.Contains("1 image(s)", report.Inputs);
        Assert.Contains("reused", report.Inputs);
        Assert.Equal(new long[] { 3, 64, 56, 56 }, Assert.Single(Assert.Single(report.Results).Agreement).Shape);
        // A second run into the same folder is refused unless --overwrite.
        Assert.Equal(1, Cli("bench", "--providers", "cpu", "--batch", "1", "--iters", "1", "--layers", "layer1", "-o", dir.Path, "-q"));
    }

    [Theory]
    [InlineData("--batch", "1,0")]
    [InlineData("--batch", "8,x")]
    [InlineData("--providers", "tpu")]
    [InlineData("--cuda-options", "prefer_nhwc=maybe")]
    public void Bad_arguments_fail_before_any_run(string option, string value)
    {
        using var dir = new Fixtures.TempDir();
        Assert.Equal(1, Cli("bench", option, value, "--layers", "layer1", "-o", dir.Path, "-q"));
        Assert.False(File.Exists(dir.File("report.json")));
    }
}
