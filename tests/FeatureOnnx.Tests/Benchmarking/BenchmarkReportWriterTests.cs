using System.Xml.Linq;
using FeatureOnnx.Benchmarking;

namespace FeatureOnnx.Tests.Benchmarking;

[Trait("Category", TestCategory.Fast)]
public sealed class BenchmarkReportWriterTests(ITestOutputHelper output)
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static BenchmarkResult Result(string provider, int batch, double imagesPerSecond, double maxAbs = 0, double cosine = 1) => new()
    {
        Provider = provider,
        BatchSize = batch,
        SessionCreationMs = 500,
        FirstRunMs = 90,
        LatencyMs = new LatencySummary(1000 * batch / imagesPerSecond, 1, 2, 3, 4, 5),
        ImagesPerSecond = imagesPerSecond,
        HostPeakBytes = 600L << 20,
        HostPeakDeltaBytes = 40L << 20,
        DeviceUsedBytes = provider == "cpu" ? null : 3000L << 20,
        DeviceDeltaBytes = provider == "cpu" ? null : 2000L << 20,
        DeviceMemoryNote = provider == "cpu" ? "n/a on CPU" : null,
        AgreementReference = "cpu",
        Agreement = [new OutputAgreement("pooled", [batch, 512], maxAbs, maxAbs / 6.5, cosine)],
    };

    // Figures of the shape the H200 gives (shared/gpu/README.md), to see the chart with two providers.
    private static BenchmarkReport TwoProviders() => new()
    {
        Status = "completed",
        Model = "resnet18 <&>",
        Outputs = ["pooled"],
        Inputs = "seeded random pixels",
        RandomInputs = true,
        BatchSizes = [1, 8, 32, 256],
        WarmupIterations = 5,
        Iterations = 50,
        Optimization = "all",
        IntraOpThreads = 0,
        CudaOptions = "prefer_nhwc=1",
        OrtVersion = "1.31.0",
        Machine = new BenchmarkMachine(16, "some CPU", "Linux", "NVIDIA H200"),
        Providers = ["cpu", "cuda:0"],
        Skipped = [new SkippedProvider("cuda:0", "out of memory") { BatchSize = 1024 }],
        Results =
        [
            Result("cpu", 1, 150), Result("cpu", 8, 400), Result("cpu", 32, 480), Result("cpu", 256, 500),
            Result("cuda:0", 1, 600, 3e-3, 0.9999995), Result("cuda:0", 8, 3500, 3e-3, 0.9999995),
            Result("cuda:0", 32, 6500, 3e-3, 0.9999996), Result("cuda:0", 256, 7722, 3e-3, 0.9999995),
        ],
        ProcessPeakBytes = 2L << 30,
        PeakResetPerConfiguration = true,
    };

    [Fact]
    public void Chart_has_one_polyline_per_provider_on_a_log2_axis()
    {
        var text = ThroughputChart.Render(TwoProviders());
        output.WriteLine(text);
        var svg = XDocument.Parse(text);
        var lines = svg.Descendants(Svg + "polyline").ToList();
        Assert.Equal(["cpu", "cuda:0"], lines.Select(l => (string?)l.Attribute("data-provider")));
        var xs = ((string)lines[0].Attribute("points")!).Split(' ').Select(p => double.Parse(p.Split(',')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        // Batch 1, 8, 32, 256: log2 steps of 3, 2 and 3.
        Assert.Equal((xs[1] - xs[0]) / 3, (xs[2] - xs[1]) / 2, 1);
        Assert.Equal((xs[2] - xs[1]) / 2, (xs[3] - xs[2]) / 3, 1);
        Assert.Contains(svg.Descendants(Svg + "text"), t => t.Value == "resnet18 <&>: throughput by batch size");
    }

    [Fact]
    public void Markdown_table_reports_device_memory_and_the_worst_agreement()
    {
        var md = BenchmarkMarkdown.Render(TwoProviders());
        output.WriteLine(md);
        Assert.Contains("| cuda:0 | fp32 | 256 | run | 0.50 | 90.0 | 2.00 | 3.00 | 4.00 | 7722 | 600 | 40 | 3000 (+2000) | 3.0e-3 | 4.6e-4 | 0.9999995 |", md);
        Assert.Contains("| cpu | fp32 | 1 | run | 0.50 | 90.0 | 2.00 | 3.00 | 4.00 | 150 | 600 | 40 | n/a | 0 | 0 | 1 |", md);
        Assert.Contains("**Skipped cuda:0 at batch 1024**: out of memory", md);
    }

    [Fact]
    public void Json_round_trips_including_infinite_disagreement()
    {
        using var dir = new Fixtures.TempDir();
        var report = TwoProviders() with { Results = [Result("cuda:0", 1, 10, double.PositiveInfinity, 0)] };
        BenchmarkReportWriter.Write(report, dir.Path);
        var back = BenchmarkReportWriter.Read(dir.File("report.json"));
        Assert.Equal(double.PositiveInfinity, back.Results[0].Agreement[0].MaxAbs);
        Assert.Equal("NVIDIA H200", back.Machine.Gpu);
        Assert.Equal(1024, back.Skipped[0].BatchSize);
        Assert.Equal("run", back.Results[0].InputPath);
        Assert.Equal(["run"], back.InputPaths);
    }

    [Fact]
    public void A_report_without_input_paths_reads_as_run()
    {
        using var dir = new Fixtures.TempDir();
        BenchmarkReportWriter.Write(TwoProviders(), dir.Path);
        var json = File.ReadAllText(dir.File("report.json"));
        json = System.Text.RegularExpressions.Regex.Replace(json, "\\s*\"inputPaths?\": (\\[[^\\]]*\\]|\"run\"),", "");
        Assert.DoesNotContain("inputPath", json);
        File.WriteAllText(dir.File("report.json"), json);
        var back = BenchmarkReportWriter.Read(dir.File("report.json"));
        Assert.Equal(["run"], back.InputPaths);
        Assert.All(back.Results, r => Assert.Equal("run", r.InputPath));
    }

    [Fact]
    public void Chart_draws_one_line_per_provider_and_path_coloured_by_provider_dashed_by_path()
    {
        var two = TwoProviders();
        var report = two with
        {
            InputPaths = ["run", "uint8"],
            Results = [.. two.Results, .. two.Results.Where(r => r.Provider == "cuda:0").Select(r => r with { InputPath = "uint8", ImagesPerSecond = r.ImagesPerSecond * 2 })],
        };
        var svg = XDocument.Parse(ThroughputChart.Render(report));
        var lines = svg.Descendants(Svg + "polyline").ToList();
        Assert.Equal(["cpu run", "cuda:0 run", "cuda:0 uint8"], lines.Select(l => $"{l.Attribute("data-provider")!.Value} {l.Attribute("data-path")!.Value}"));
        Assert.Equal((string?)lines[1].Attribute("stroke"), (string?)lines[2].Attribute("stroke"));
        Assert.Null(lines[1].Attribute("stroke-dasharray"));
        Assert.NotNull(lines[2].Attribute("stroke-dasharray"));
        Assert.Contains(svg.Descendants(Svg + "text"), t => t.Value == "cuda:0 uint8");
        var md = BenchmarkMarkdown.Render(report);
        Assert.Contains("| cuda:0 | fp32 | 256 | uint8 |", md);
        Assert.Contains("`uint8` (", md);
    }
}
