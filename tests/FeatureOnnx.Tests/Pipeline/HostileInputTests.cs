using System.Diagnostics;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Sinks;
using FeatureOnnx.Sources;
using FeatureOnnx.Tests.Sources;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>What goes wrong with one input is its errors.csv line; a stop does not wait for a read that never returns.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class HostileInputTests(ITestOutputHelper output)
{
    private static string[] CsvLines(string path) => File.ReadAllLines(path).Skip(1).ToArray();

    private static string Photos(Fixtures.TempDir tmp, int count, string folder = "in")
    {
        var dir = Directory.CreateDirectory(tmp.File(folder)).FullName;
        foreach (var f in Directory.EnumerateFiles(Fixtures.PathOf("photos")).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Take(count))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [SkippableFact]
    public async Task A_read_stuck_in_the_kernel_does_not_hold_up_a_stop_and_resume_completes_the_run()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "a FIFO read is the stuck read: Linux");
        using var tmp = new Fixtures.TempDir();
        var input = Photos(tmp, 12);
        var stuckName = Directory.EnumerateFiles(input).Order(StringComparer.Ordinal).ElementAt(6); // in the second batch of 4
        // A FIFO with a writer that never writes: reading it blocks in read(2), as on a hung network file system.
        var fifo = tmp.File("hung");
        InputFileTests.MakeFifo(fifo);
        using var writer = Process.Start(new ProcessStartInfo("sh", ["-c", $"exec 3>'{fifo}'; sleep 120"]))!;
        using var stuck = new ManualResetEventSlim();
        var pipeline = new ExtractionPipeline
        {
            ReadInput = (item, max) =>
            {
                if (item.Path != stuckName) return item.ReadBytes(max);
                stuck.Set();
                return File.ReadAllBytes(fifo);
            },
        };
        var options = new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("out"), BatchSize = 4, DecodeWorkers = 2 };
        using var cts = new CancellationTokenSource();
        try
        {
            var run = pipeline.RunAsync(options, null, cts.Token);
            Assert.True(await Task.Run(() => stuck.Wait(TimeSpan.FromSeconds(120))), "the stuck read was never reached");
            await Task.Delay(500);
            Assert.False(run.IsCompleted);
            var clock = Stopwatch.StartNew();
            cts.Cancel();
            var first = await run.WaitAsync(TimeSpan.FromSeconds(30));
            output.WriteLine($"stopped {clock.Elapsed.TotalSeconds:0.00} s after the stop request: {first.Extracted} rows, {first.NotProcessed} not processed");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed.TotalSeconds:0.0} s to stop");
            Assert.Equal("interrupted", first.Status);
            Assert.Equal(4, first.Extracted); // the first batch; the stuck one is dropped, uncommitted
            Assert.Equal(first.Extracted, Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out"), "pooled.npy")).Shape[0]);
            Assert.Equal(first.Extracted, CsvLines(Path.Combine(tmp.File("out"), "index.csv")).Length);
            Assert.True(File.Exists(Path.Combine(tmp.File("out"), ResumeLog.JobFileName)));
        }
        finally
        {
            writer.Kill(); // the abandoned read returns (end of file) and its thread ends
        }

        var second = await new ExtractionPipeline().RunAsync(options with { Resume = true });
        Assert.Equal(("completed", 12L, 0L), (second.Status, second.Extracted, second.Failed));
        await new ExtractionPipeline().RunAsync(options with { OutputDirectory = tmp.File("ref") });
        Assert.Equal(CsvLines(Path.Combine(tmp.File("ref"), "index.csv")), CsvLines(Path.Combine(tmp.File("out"), "index.csv")));
        Assert.Equal(Fixtures.ReadFloatNpy(Path.Combine(tmp.File("ref"), "pooled.npy")).Data, Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out"), "pooled.npy")).Data);
    }

    [Fact]
    public async Task Out_of_memory_on_one_input_is_its_errors_line_and_the_run_goes_on()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Photos(tmp, 5);
        var victim = Directory.EnumerateFiles(input).Order(StringComparer.Ordinal).ElementAt(2);
        var pipeline = new ExtractionPipeline
        {
            ReadInput = (item, max) => item.Path == victim ? throw new OutOfMemoryException() : item.ReadBytes(max),
        };
        var result = await pipeline.RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("out"), BatchSize = 2 });
        Assert.Equal(("completed", 4L, 1L), (result.Status, result.Extracted, result.Failed));
        Assert.Equal([$"{victim},out of memory reading it"], CsvLines(Path.Combine(tmp.File("out"), "errors.csv")));
    }

    [SkippableFact]
    public async Task A_name_that_is_not_utf8_is_extracted_like_the_same_image_under_a_plain_name()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "file names as bytes: Linux");
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(tmp.File("in")).FullName;
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), Path.Combine(input, "apple.jpg"));
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), Path.Combine(input, "tmp.jpg"));
        var latin1 = InputFileTests.RenameToBytes(Path.Combine(input, "tmp.jpg"), [(byte)'c', (byte)'a', (byte)'f', 0xE9, (byte)'.', (byte)'j', (byte)'p', (byte)'g']);

        var result = await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("out") });
        Assert.Equal((2L, 0L), (result.Extracted, result.Failed));
        Assert.Equal([$"0,{input}/apple.jpg", $"1,{input}/caf\\xe9.jpg"], CsvLines(Path.Combine(tmp.File("out"), "index.csv")));
        var rows = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out"), "pooled.npy")).Data;
        Assert.Equal(rows.AsSpan(0, 512).ToArray(), rows.AsSpan(512, 512).ToArray());
        InputFileTests.DeleteByBytes(latin1);
    }

    [Fact]
    public async Task Non_image_files_are_errors_lines_but_no_failure_and_survive_resume_and_merge()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Photos(tmp, 8);
        File.WriteAllText(Path.Combine(input, "notes.txt"), "text");
        File.WriteAllText(Path.Combine(input, "labels.json"), "{}");
        var options = new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("all"), BatchSize = 2 };
        var all = await new ExtractionPipeline().RunAsync(options);
        Assert.Equal((10L, 8L, 0L, 2L), (all.Inputs, all.Extracted, all.Failed, all.SkippedNonImageFiles));
        string[] expected = [$"{input}/labels.json,{FolderSource.NotAnImage}", $"{input}/notes.txt,{FolderSource.NotAnImage}"];
        Assert.Equal(expected, CsvLines(Path.Combine(tmp.File("all"), "errors.csv")).Order(StringComparer.Ordinal));

        // Interrupted after the first batch, then resumed: the lines are neither lost nor doubled, and still no failure.
        using var cts = new CancellationTokenSource();
        var first = await new ExtractionPipeline().RunAsync(options with { OutputDirectory = tmp.File("resumed") }, new CancelOnFirstReport(cts), cts.Token);
        Assert.Equal(("interrupted", 0L), (first.Status, first.Failed));
        var second = await new ExtractionPipeline().RunAsync(options with { OutputDirectory = tmp.File("resumed"), Resume = true });
        Assert.Equal(("completed", 8L, 0L, 2L), (second.Status, second.Extracted, second.Failed, second.SkippedNonImageFiles));
        Assert.Equal(expected, CsvLines(Path.Combine(tmp.File("resumed"), "errors.csv")).Order(StringComparer.Ordinal));

        // Shards merged: the same lines, and the merge does not count them as failures.
        foreach (var i in new[] { 0, 1 })
            await new ExtractionPipeline().RunAsync(options with { OutputDirectory = tmp.File($"s{i}"), Shard = new Shard(i, 2) });
        var merged = ShardMerge.Merge([tmp.File("s0"), tmp.File("s1")], tmp.File("merged"));
        Assert.Equal((8L, 0L), (merged.Extracted, merged.Failed));
        Assert.Equal(expected, CsvLines(Path.Combine(tmp.File("merged"), "errors.csv")));
    }

    /// <summary>Cancels on the first report (synchronously, unlike System.Progress).</summary>
    private sealed class CancelOnFirstReport(CancellationTokenSource cts) : IProgress<ExtractionProgress>
    {
        public void Report(ExtractionProgress value) => cts.Cancel();
    }
}

/// <summary>extract --e2e reads its inputs through the same checks.</summary>
[Trait("Category", TestCategory.Slow)]
public sealed class EndToEndHostileInputTests(EndToEndModelFile model) : IClassFixture<EndToEndModelFile>
{
    [SkippableFact]
    public async Task The_e2e_path_refuses_a_fifo_a_device_and_an_8_GiB_file_and_extracts_the_rest()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/dev/zero"), "FIFOs and /dev/zero: Linux");
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(tmp.File("in")).FullName;
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), Path.Combine(input, "good.jpg"));
        InputFileTests.MakeFifo(Path.Combine(input, "pipe.jpg"));
        File.CreateSymbolicLink(Path.Combine(input, "zero.jpg"), "/dev/zero");
        InputFileTests.MakeSparse(Path.Combine(input, "big.jpg"), 8L << 30);
        File.WriteAllText(Path.Combine(input, "notes.txt"), "text");

        var run = new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("out"), Model = model.Path });
        var result = await run.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(("completed", 1L, 3L, 1L), (result.Status, result.Extracted, result.Failed, result.SkippedNonImageFiles));
        var errors = File.ReadAllLines(Path.Combine(tmp.File("out"), "errors.csv")).Skip(1)
            .ToDictionary(l => Path.GetFileName(l[..l.IndexOf(',')]), l => l[(l.IndexOf(',') + 1)..].Trim('"'));
        Assert.Equal("not a regular file (FIFO)", errors["pipe.jpg"]);
        Assert.Equal("not a regular file (character device /dev/zero)", errors["zero.jpg"]);
        Assert.StartsWith("file of 8.0 GiB (8589934592 bytes), above the limit", errors["big.jpg"]);
        Assert.Equal(FolderSource.NotAnImage, errors["notes.txt"]);
        Assert.Equal(new long[] { 1, 512 }, Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out"), "pooled.npy")).Shape);
    }
}
