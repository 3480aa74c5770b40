using System.Xml.Linq;
using FeatureOnnx.Models;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Benchmarking;

/// <summary>One CPU run of the built-in resnet18 at fp32 and fp16, run and uint8 paths.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class PrecisionBenchRun() : BenchRunFixture("--model", "resnet18", "--providers", "cpu", "--batch", "2",
    "--precision", "fp16", "--input-path", "run,uint8", "--warmup", "0", "--iters", "1");

/// <summary><c>bench --precision</c>: precisions are an axis like providers, every row compared with the CPU's fp32 run.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class BenchmarkPrecisionTests(PrecisionBenchRun run) : IClassFixture<PrecisionBenchRun>
{
    [Fact]
    public void Each_precision_has_its_rows_compared_with_the_fp32_cpu_run()
    {
        Assert.Equal(0, run.ExitCode);
        var report = run.Report!;
        Assert.Equal(["fp32", "fp16"], report.Precisions);
        Assert.Equal(["fp32 run", "fp32 uint8", "fp16 run", "fp16 uint8"], report.Results.Select(r => $"{r.Precision} {r.InputPath}"));
        foreach (var r in report.Results.Where(r => r.Precision == "fp16"))
        {
            var a = Assert.Single(r.Agreement);
            Assert.Contains("fp32 model", r.AgreementReference);
            Assert.True(a.MinCosine is >= 0.9999 and < 1, $"{r.InputPath}: min cosine {a.MinCosine}");
            Assert.True(a.MaxAbs > 0);
        }
        var conversion = Assert.Single(report.Conversions);
        Assert.Equal(ModelPrecision.Fp16, conversion.Precision);
        Assert.Contains(conversion.Rules, r => r.Kind == ConversionRuleKind.Float32Island);
    }

    [Fact]
    public void Markdown_and_chart_name_the_precision()
    {
        var md = File.ReadAllText(run.Dir.File("report.md"));
        Assert.Contains("| provider | precision | batch | path |", md);
        Assert.Contains("| cpu | fp16 | 2 | uint8 |", md);
        Assert.Contains("- `fp16` conversion (float16): FoldedBatchNormalization: 22", md);
        var svg = XDocument.Load(run.Dir.File("report.svg"));
        Assert.Equal(["fp32", "fp32", "fp16", "fp16"], svg.Descendants(XName.Get("polyline", "http://www.w3.org/2000/svg")).Select(p => (string?)p.Attribute("data-precision")));
    }
}
