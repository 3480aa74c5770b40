using FeatureOnnx.Sinks;

namespace FeatureOnnx.Tests.Sinks;

[Trait("Category", TestCategory.Fast)]
public sealed class ResumeLogTests
{
    [Fact]
    public void A_torn_last_progress_line_is_ignored()
    {
        using var tmp = new Fixtures.TempDir();
        var job = new Dictionary<string, string> { ["model"] = "m" };
        using (var log = ResumeLog.Start(tmp.Path, job))
        {
            log.Commit(3, 1);
            log.Commit(6, 1);
        }
        File.AppendAllText(Path.Combine(tmp.Path, ResumeLog.ProgressFileName), "\n9 ");
        using var again = ResumeLog.Continue(tmp.Path, job, out var rows, out var errors);
        Assert.Equal((6L, 1L), (rows, errors));
    }

    [Fact]
    public void Another_job_is_refused_naming_what_differs()
    {
        using var tmp = new Fixtures.TempDir();
        ResumeLog.Start(tmp.Path, new Dictionary<string, string> { ["model"] = "a", ["shard"] = "0/2" }).Dispose();
        var e = Assert.Throws<SettingException>(() => ResumeLog.Continue(tmp.Path, new Dictionary<string, string> { ["model"] = "a", ["shard"] = "1/2" }, out _, out _));
        Assert.Contains("shard: was '0/2', now '1/2'", e.Message);
        Assert.DoesNotContain("model:", e.Message);
    }
}
