using System.Text.Json;
using FeatureOnnx.Runtime;
using FeatureOnnx.Tests.Cli;

namespace FeatureOnnx.Tests.Runtime;

/// <summary>
/// ONNX Runtime's intra-op threads default to the cores this process may use (affinity mask, cgroup quota), not to
/// ONNX Runtime's physical-core count, and run.json records the number used.
/// </summary>
public sealed class IntraOpThreadsTests(ITestOutputHelper output)
{
    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Zero_means_every_usable_core_and_an_explicit_count_is_kept()
    {
        Assert.Equal(Environment.ProcessorCount, new SessionSettings().ResolvedIntraOpThreads);
        Assert.Equal(Environment.ProcessorCount, SessionSettings.UsableCores);
        Assert.Equal(3, new SessionSettings { IntraOpThreads = 3 }.ResolvedIntraOpThreads);
    }

    /// <summary>The affinity mask limits the default: under <c>taskset -c 0</c> the run uses one thread, whatever the machine has.</summary>
    [Trait("Category", TestCategory.Process)]
    [SkippableTheory]
    [InlineData(null, null)]
    [InlineData("0", null)]
    [InlineData(null, "3")]
    public void Run_json_records_the_threads_used(string? cpuList, string? threads)
    {
        Skip.IfNot(File.Exists("/usr/bin/taskset") || cpuList is null, "taskset (util-linux) is not installed");
        using var tmp = new Fixtures.TempDir();
        string[] args = ["extract", Fixtures.PathOf("photos", "opencv_fruits.jpg"), "-o", tmp.File("out"), "--quiet", .. threads is null ? [] : new[] { "--threads", threads }];
        var result = CliProcess.Run(CliProcess.StartInfo(args, wrapper: cpuList is null ? null : ["/usr/bin/taskset", "-c", cpuList]));
        output.WriteLine(result.Out + result.Err);
        Assert.Equal(0, result.ExitCode);
        var run = JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.File("out"), "run.json"))).RootElement;
        var expected = threads is not null ? int.Parse(threads, System.Globalization.CultureInfo.InvariantCulture)
            : cpuList is not null ? 1 : Environment.ProcessorCount;
        Assert.Equal(expected, run.GetProperty("intraOpThreads").GetInt32());
    }
}
