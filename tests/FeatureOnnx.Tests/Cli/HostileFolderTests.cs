using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Sinks;
using FeatureOnnx.Sources;
using FeatureOnnx.Tests.Sources;

namespace FeatureOnnx.Tests.Cli;

/// <summary>
/// The issue's acceptance check, as a user runs it: <c>featureonnx extract DIR -o OUT</c> on a folder with hostile
/// entries beside good images, and SIGTERM while a read hangs.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class HostileFolderTests(ITestOutputHelper output)
{
    private static ProcessStartInfo CliStart(params string[] args) => CliProcess.StartInfo(args);

    private static string[] CsvLines(string path) => File.ReadAllLines(path).Skip(1).ToArray();

    private static string GoodPhotos(Fixtures.TempDir tmp)
    {
        var input = Directory.CreateDirectory(tmp.File("in")).FullName;
        foreach (var f in Directory.EnumerateFiles(Fixtures.PathOf("photos")))
            File.Copy(f, Path.Combine(input, Path.GetFileName(f)));
        return input;
    }

    // Peak resident memory so far (kB) of a running process; null once it is gone.
    private static long? PeakRssKb(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }

    [SkippableFact]
    public async Task A_fifo_a_dev_zero_symlink_and_an_8_GiB_file_beside_good_images_finish_in_seconds_with_exit_3_under_1_GB()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/dev/zero"), "FIFOs, /dev/zero and /proc: Linux");
        using var tmp = new Fixtures.TempDir();
        var input = GoodPhotos(tmp);
        InputFileTests.MakeFifo(Path.Combine(input, "pipe.jpg"));
        File.CreateSymbolicLink(Path.Combine(input, "zero.jpg"), "/dev/zero");
        InputFileTests.MakeSparse(Path.Combine(input, "sparse.jpg"), 8L << 30);
        var outDir = tmp.File("out");

        var clock = Stopwatch.StartNew();
        using var p = Process.Start(CliStart("extract", input, "-o", outDir, "-q"))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        long peakKb = 0;
        var exited = p.WaitForExitAsync();
        while (!exited.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(180))
        {
            peakKb = Math.Max(peakKb, PeakRssKb(p.Id) ?? 0);
            await Task.WhenAny(exited, Task.Delay(20));
        }
        if (!exited.IsCompleted) p.Kill();
        await exited;
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s, peak RSS {peakKb / 1024} MiB, exit {p.ExitCode}\n{await stdout}{await stderr}");

        Assert.Equal(3, p.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(120), $"took {clock.Elapsed.TotalSeconds:0} s");
        Assert.InRange(peakKb, 1, 1_000_000); // under 1 GB (the /dev/zero read alone reached 4.6 GB)
        var good = Directory.EnumerateFiles(Fixtures.PathOf("photos")).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(good.Select((name, row) => $"{row},{input}/{name}"), CsvLines(Path.Combine(outDir, "index.csv")));
        var errors = CsvLines(Path.Combine(outDir, "errors.csv")).ToDictionary(l => Path.GetFileName(l[..l.IndexOf(',')]), l => l[(l.IndexOf(',') + 1)..].Trim('"'));
        Assert.Equal(4, errors.Count);
        Assert.Equal("not a regular file (FIFO)", errors["pipe.jpg"]);
        Assert.Equal("not a regular file (character device /dev/zero)", errors["zero.jpg"]);
        Assert.Equal("file of 8.0 GiB (8589934592 bytes), above the limit of 1.0 GiB for one input (raise the file size limit to accept it)", errors["sparse.jpg"]);
        Assert.Equal(FolderSource.NotAnImage, errors["SOURCES.md"]);
        Assert.Equal(new long[] { 33, 512 }, Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy")).Shape);
    }

    [SkippableFact]
    public async Task Sigterm_ends_the_run_within_seconds_while_a_read_hangs_and_resume_completes_it()
    {
        // strace stops the thread that reads one file for 10 minutes on entry to pread64: a hung network file system.
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/usr/bin/strace"), "needs Linux and strace (syscall delay injection)");
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(tmp.File("in")).FullName;
        var photos = Directory.EnumerateFiles(Fixtures.PathOf("photos")).Where(f => f.EndsWith(".jpg", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Take(11).ToList();
        foreach (var f in photos) File.Copy(f, Path.Combine(input, Path.GetFileName(f)));
        var hung = Path.Combine(input, "libjxl_flower_hung.jpg"); // fifth in path order: in the second batch of 3
        File.Copy(photos[^1], hung);
        var outDir = tmp.File("out");
        string[] args = ["extract", input, "-o", outDir, "--batch", "3", "--workers", "2"];
        var log = tmp.File("strace.log");

        var psi = CliProcess.StartInfo(args, wrapper: ["/usr/bin/strace", "-f", "-q", "-o", log, "-P", hung, "-e", "trace=pread64", "-e", "inject=pread64:delay_enter=600000000"]);
        using var strace = Process.Start(psi)!;
        var straceOut = strace.StandardOutput.ReadToEndAsync();
        var straceErr = strace.StandardError.ReadToEndAsync();
        try
        {
            // Wait for the read of the hung file to start (strace logs the call on entry), and a little longer.
            var deadline = Stopwatch.StartNew();
            while (!(File.Exists(log) && File.ReadAllText(log).Contains("pread64(", StringComparison.Ordinal)))
            {
                if (strace.HasExited) Skip.If(true, $"strace could not trace the CLI here: {await straceErr}");
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(90), $"the hung read was never reached; strace log:\n{(File.Exists(log) ? File.ReadAllText(log) : "")}");
                await Task.Delay(100);
            }
            await Task.Delay(1000);
            var cli = int.Parse(File.ReadAllText($"/proc/{strace.Id}/task/{strace.Id}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
            var clock = Stopwatch.StartNew();
            Assert.Equal(0, Kill(cli, 15)); // SIGTERM
            // Exited: a zombie (strace, its tracer, may not reap it while it waits out the delay) or gone.
            string? stat;
            while ((stat = ReadStat(cli)) is not null && stat[(stat.LastIndexOf(')') + 2)] != 'Z' && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(50);
            output.WriteLine($"exited {clock.Elapsed.TotalSeconds:0.00} s after SIGTERM");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"still running {clock.Elapsed.TotalSeconds:0} s after SIGTERM");
            // The exit status, as waitpid reports it: field 52 of /proc/PID/stat, or strace's record once it is reaped.
            var status = stat is null ? null : stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[49].Trim();
            if (status is not null) Assert.Equal(130 << 8, int.Parse(status, CultureInfo.InvariantCulture));
            else Assert.Contains($"{cli} +++ exited with 130 +++", File.ReadAllText(log));
        }
        finally
        {
            // strace may wait out its injected delay after the CLI is gone: it is ours to end.
            if (!strace.HasExited) strace.Kill(entireProcessTree: true);
            await strace.WaitForExitAsync();
        }
        output.WriteLine(await straceOut);

        var run = File.ReadAllText(Path.Combine(outDir, "run.json"));
        Assert.Contains("\"status\": \"interrupted\"", run);
        var rows = CsvLines(Path.Combine(outDir, "index.csv")).Length;
        Assert.Equal(3, rows); // the batch before the hung read, committed; the hung batch dropped
        Assert.Equal(rows, Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy")).Shape[0]);
        Assert.True(File.Exists(Path.Combine(outDir, ResumeLog.JobFileName)));

        using (var resume = Process.Start(CliStart([.. args, "--resume", "-q"]))!)
        {
            await resume.WaitForExitAsync();
            Assert.Equal(0, resume.ExitCode);
        }
        using (var reference = Process.Start(CliStart([.. args.Select(a => a == outDir ? tmp.File("ref") : a), "-q"]))!)
            await reference.WaitForExitAsync();
        Assert.Equal(CsvLines(Path.Combine(tmp.File("ref"), "index.csv")), CsvLines(Path.Combine(outDir, "index.csv")));
        Assert.Equal(Fixtures.ReadFloatNpy(Path.Combine(tmp.File("ref"), "pooled.npy")).Data, Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy")).Data);
    }

    [SkippableFact]
    public async Task Sigterm_while_an_input_list_pipe_never_delivers_exits_130_and_writes_nothing()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "FIFOs: Linux");
        using var tmp = new Fixtures.TempDir();
        var list = tmp.File("list.txt");
        InputFileTests.MakeFifo(list); // no writer: reading the list blocks in open(2)
        var outDir = tmp.File("out");
        var psi = CliStart("extract", "@" + list, "-o", outDir);
        psi.Environment["DOTNET_EnableDiagnostics"] = "0"; // else the runtime's debugger transport waits on a FIFO of its own
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        // Wait until the CLI is blocked opening the list (after start-up and the model's session); where the kernel
        // hides wchan, 30 s is far more than that takes.
        var clock = Stopwatch.StartNew();
        while (!ThreadsWaitOnFifo(p.Id) && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(100);
        clock.Restart();
        Assert.Equal(0, Kill(p.Id, 15));
        await Task.WhenAny(p.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.True(p.HasExited, "still running 30 s after SIGTERM");
        output.WriteLine($"exited {clock.Elapsed.TotalSeconds:0.00} s after SIGTERM: {await stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal(130, p.ExitCode);
        Assert.Contains("interrupted before any input was processed", await stderr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public async Task An_input_list_is_read_as_a_list_not_as_a_response_file()
    {
        using var tmp = new Fixtures.TempDir();
        var folder = Directory.CreateDirectory(tmp.File("a b")).FullName;
        File.Copy(Fixtures.PathOf("photos", "opencv_apple.jpg"), Path.Combine(folder, "x y.jpg"));
        var list = tmp.File("list.txt");
        File.WriteAllText(list, "# relative to this file, spaces kept\na b/x y.jpg\n");
        using var p = Process.Start(CliStart("extract", "@" + list, "-o", tmp.File("out"), "-q"))!;
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
        Assert.Equal([$"0,{folder}/x y.jpg"], CsvLines(Path.Combine(tmp.File("out"), "index.csv")));
    }

    // A thread of the process sleeps in the kernel's FIFO open (wait_for_partner).
    private static bool ThreadsWaitOnFifo(int pid)
    {
        try
        {
            return Directory.EnumerateDirectories($"/proc/{pid}/task").Any(t => File.ReadAllText(Path.Combine(t, "wchan")) == "wait_for_partner");
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string? ReadStat(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
