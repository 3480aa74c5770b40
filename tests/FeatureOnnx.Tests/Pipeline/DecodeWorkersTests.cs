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

    [Fact]
    public async Task A_cancelled_batch_returns_at_once_though_an_item_never_ends_and_dispose_does_not_wait_for_it()
    {
        using var never = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        var workers = new DecodeWorkers(2, nice: 0);
        using var cts = new CancellationTokenSource();
        var ran = 0;
        var batch = Task.Run(() => workers.For(50, i =>
        {
            if (i == 0) { started.Set(); never.Wait(); } // a read that never returns
            else { Interlocked.Increment(ref ran); Thread.Sleep(10); }
        }, cts.Token));
        Assert.True(started.Wait(TimeSpan.FromSeconds(10)));
        Thread.Sleep(50);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => batch.WaitAsync(TimeSpan.FromSeconds(5)));
        var after = Volatile.Read(ref ran);
        await Task.Run(workers.Dispose).WaitAsync(TimeSpan.FromSeconds(5)); // a TimeoutException if Dispose waited for the stuck item
        Thread.Sleep(100);
        Assert.InRange(Volatile.Read(ref ran), after, after + 1); // the free worker took no further item (at most the one it was on)
        Assert.True(ran < 49);
        Assert.Throws<ObjectDisposedException>(() => workers.For(1, _ => { }));
        never.Set(); // the stuck item ends; its thread must not fail on the disposed workers
        Thread.Sleep(100);
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
