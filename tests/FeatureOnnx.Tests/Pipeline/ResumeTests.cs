using System.Diagnostics;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Sinks;
using FeatureOnnx.Tests.Preprocessing;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>Kill the CLI with SIGKILL at random moments, resume each time, and compare with an uninterrupted run.</summary>
public sealed class ResumeTests(ITestOutputHelper output)
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "featureonnx.dll");

    private static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static string InputFolder(Fixtures.TempDir tmp)
    {
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        // Four copies of the photos: long enough (several seconds) that random kills land on an idle machine too.
        foreach (var copy in Enumerable.Range(0, 4))
            foreach (var f in Directory.EnumerateFiles(Fixtures.PathOf("photos")).Where(f => !f.EndsWith(".md")))
                File.Copy(f, Path.Combine(input, $"{copy}_{Path.GetFileName(f)}"));
        File.WriteAllBytes(Path.Combine(input, "zz_truncated.jpg"), File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg"))[..20_000]);
        File.WriteAllText(Path.Combine(input, "aa_text.png"), "not an image");
        return input;
    }

    [Trait("Category", TestCategory.Process)]
    [Fact]
    public async Task Five_sigkills_and_resumes_give_the_uninterrupted_result()
    {
        using var tmp = new Fixtures.TempDir();
        var input = InputFolder(tmp);
        // Start-up takes about 0.7 s.
        await KillResumeAndCompare(tmp, outDir => ["extract", input, "-o", outDir, "--batch", "2", "--layers", "pooled,layer4", "-q"], 700, 2500, ["pooled", "layer4"]);
    }

    [Trait("Category", TestCategory.Process)]
    [Fact]
    public async Task Five_sigkills_and_resumes_of_an_end_to_end_run_give_the_uninterrupted_result()
    {
        using var tmp = new Fixtures.TempDir();
        var input = InputFolder(tmp);
        var model = tmp.File("resnet18.e2e.onnx");
        var catalog = new FeatureOnnx.Models.ModelCatalog();
        File.WriteAllBytes(model, FeatureOnnx.Models.EndToEndModelBuilder.Build(catalog.Resolve("resnet18"), ["pooled", "layer4"], catalog).OnnxBytes);
        // Start-up (this process, then a worker process loading the model) takes 2-6 s, more than the work itself on a quiet
        // machine (a worker does 10-20 images/s on 2 cores): kills are timed from the moment the run opens its folder.
        await KillResumeAndCompare(tmp, outDir => ["extract", input, "-o", outDir, "--e2e", "--model", model, "--workers", "1", "--layers", "layer4,pooled", "-q"], 0, 3000, ["pooled", "layer4"],
            afterOpen: true);
    }

    /// <summary>
    /// Runs <paramref name="args"/> once uninterrupted, and again with --resume killed by SIGKILL at random moments
    /// (up to five kills; the delay counted from the start, or with <paramref name="afterOpen"/> from the moment the run
    /// writes to progress.log, which it does once its folder is opened) and resumed to the end: every file must be the same, byte for byte.
    /// </summary>
    private async Task KillResumeAndCompare(Fixtures.TempDir tmp, Func<string, string[]> args, int minDelayMs, int maxDelayMs, string[] layers, bool afterOpen = false)
    {
        var reference = Path.Combine(tmp.Path, "ref");
        var resumed = Path.Combine(tmp.Path, "out");
        using (var p = Start(args(reference))) await p.WaitForExitAsync();
        var rng = new Random(1234);
        var kills = 0;
        for (var attempt = 0; attempt < 20 && kills < 5; attempt++)
        {
            var log = Path.Combine(resumed, ResumeLog.ProgressFileName);
            var logLength = File.Exists(log) ? new FileInfo(log).Length : -1;
            using var p = Start([.. args(resumed), "--resume"]);
            // A resumed run appends a clean commit line when it opens the folder; a new one creates the log.
            while (afterOpen && !p.HasExited && (File.Exists(log) ? new FileInfo(log).Length : -1) <= logLength) await Task.Delay(20);
            await Task.Delay(rng.Next(minDelayMs, maxDelayMs));
            if (p.HasExited) break; // finished before the kill
            p.Kill();
            await p.WaitForExitAsync();
            kills++;
            output.WriteLine($"kill {kills}: committed {(File.Exists(log) ? File.ReadAllLines(log).LastOrDefault(l => l.Length > 0) : "-")}");
        }
        using (var p = Start([.. args(resumed), "--resume"]))
        {
            await p.WaitForExitAsync();
            Assert.Equal(3, p.ExitCode); // finished, two inputs failed
        }
        Assert.True(kills >= 3, $"only {kills} kills landed before the run finished");
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "index.csv")), File.ReadAllBytes(Path.Combine(resumed, "index.csv")));
        Assert.Equal(File.ReadAllLines(Path.Combine(reference, "errors.csv")).Order(), File.ReadAllLines(Path.Combine(resumed, "errors.csv")).Order());
        foreach (var layer in layers)
        {
            Assert.Equal(4 * 33, Fixtures.ReadFloatNpy(Path.Combine(reference, layer + ".npy")).Shape[0]);
            Assert.Equal(File.ReadAllBytes(Path.Combine(reference, layer + ".npy")), File.ReadAllBytes(Path.Combine(resumed, layer + ".npy")));
        }
        Assert.False(File.Exists(Path.Combine(resumed, ResumeLog.JobFileName)));
        Assert.Empty(Directory.EnumerateFiles(resumed, "*.partial"));
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public async Task Resume_refuses_other_settings_and_plain_rerun_refuses_an_unfinished_folder()
    {
        using var tmp = new Fixtures.TempDir();
        var outDir = Path.Combine(tmp.Path, "out");
        Directory.CreateDirectory(outDir);
        var options = new ExtractionOptions { Inputs = [Fixtures.PathOf("photos", "opencv_apple.jpg")], OutputDirectory = outDir };
        ResumeLog.Start(outDir, new Dictionary<string, string> { ["model"] = "something else" }).Dispose();
        var e = await Assert.ThrowsAsync<IOException>(() => new ExtractionPipeline().RunAsync(options));
        Assert.Contains("ExtractionOptions.Resume", e.Message);
        var mismatch = await Assert.ThrowsAsync<SettingException>(() => new ExtractionPipeline().RunAsync(options with { Resume = true }));
        Assert.Contains("model: was 'something else'", mismatch.Message);
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Csv_resume_keeps_committed_records_and_cuts_a_torn_one()
    {
        using var tmp = new Fixtures.TempDir();
        var path = tmp.File("index.csv");
        File.WriteAllText(path + ".partial", "row,path\n0,a.jpg\n1,\"b,\"\"quoted\"\".jpg\"\n2,c.jp");
        using (var log = FeatureOnnx.Formats.CsvLog.Resume(path, 2, 1, out var keys))
        {
            Assert.Equal(["a.jpg", "b,\"quoted\".jpg"], keys);
            log.Write("2", "d.jpg");
            log.Complete();
        }
        Assert.Equal("row,path\n0,a.jpg\n1,\"b,\"\"quoted\"\".jpg\"\n2,d.jpg\n", File.ReadAllText(path));
    }

    [Trait("Category", TestCategory.Fast)]
    [Fact]
    public void Npy_resume_cuts_rows_beyond_the_commit()
    {
        using var tmp = new Fixtures.TempDir();
        var path = tmp.File("x.npy");
        using (var w = new FeatureOnnx.Formats.NpyWriter(path, [2]))
            w.Append([1, 2, 3, 4, 5, 6]); // 3 rows, never completed (as after SIGKILL)
        using (var w = FeatureOnnx.Formats.NpyWriter.Resume(path, 2))
        {
            w.Append([7, 8]);
            w.Complete();
        }
        var (shape, data) = Fixtures.ReadFloatNpy(path);
        Assert.Equal(new long[] { 3, 2 }, shape);
        Assert.Equal([1f, 2, 3, 4, 7, 8], data);
    }
}
