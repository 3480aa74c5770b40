using System.Collections.Concurrent;
using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Tests.Pipeline;

[Trait("Category", TestCategory.Fast)]
public class DecodeWorkersTests
{
    [Fact]
    public void Every_index_runs_exactly_once_batch_after_batch()
    {
        using var workers = new DecodeWorkers(3, nice: 0);
        for (var batch = 0; batch < 50; batch++)
        {
            var count = batch % 7 * 5; // includes 0 and counts below and above the worker count
            var hits = new int[count];
            workers.For(count, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void An_exception_in_one_item_reaches_the_caller_and_the_workers_stay_usable()
    {
        using var workers = new DecodeWorkers(2, nice: 0);
        var error = Assert.Throws<InvalidOperationException>(() => workers.For(100, i =>
        {
            if (i == 17) throw new InvalidOperationException("item 17");
        }));
        Assert.Equal("item 17", error.Message);
        var done = 0;
        workers.For(10, _ => Interlocked.Increment(ref done));
        Assert.Equal(10, done);
    }

    [SkippableFact]
    public void On_linux_the_threads_run_at_the_requested_nice_value_and_the_caller_keeps_its_own()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "nice values are per thread on Linux only");
        var before = CurrentThreadNice();
        using var workers = new DecodeWorkers(2, nice: 7);
        var seen = new ConcurrentBag<int>();
        workers.For(8, _ => seen.Add(CurrentThreadNice()));
        Assert.True(workers.PriorityLowered);
        Assert.All(seen, n => Assert.Equal(7, n));
        Assert.Equal(before, CurrentThreadNice());
    }

    // Field 19 of /proc/thread-self/stat is the calling thread's nice value (the fields after "(comm)" start at 3).
    private static int CurrentThreadNice()
    {
        var stat = File.ReadAllText("/proc/thread-self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[16], System.Globalization.CultureInfo.InvariantCulture);
    }
}
