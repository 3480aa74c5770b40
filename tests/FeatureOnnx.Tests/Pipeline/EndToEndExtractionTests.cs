using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Pipeline;

/// <summary>The built-in resnet18 exported end-to-end to a temporary file, shared by a test class.</summary>
public sealed class EndToEndModelFile : IDisposable
{
    private readonly Fixtures.TempDir _dir = new();

    public EndToEndModelFile()
    {
        var catalog = new ModelCatalog();
        Path = _dir.File("resnet18.e2e.onnx");
        File.WriteAllBytes(Path, EndToEndModelBuilder.Build(catalog.Resolve("resnet18"), ["pooled"], catalog).OnnxBytes);
        TwoOutputsPath = _dir.File("resnet18.two.e2e.onnx");
        File.WriteAllBytes(TwoOutputsPath, EndToEndModelBuilder.Build(catalog.Resolve("resnet18"), ["pooled", "layer4"], catalog).OnnxBytes);
        BatchedPath = _dir.File("resnet18.batched.e2e.onnx");
        File.WriteAllBytes(BatchedPath, EndToEndModelBuilder.Build(catalog.Resolve("resnet18"), ["pooled"], catalog, new EndToEndOptions { Batched = true }).OnnxBytes);
    }

    public string Path { get; }

    public string BatchedPath { get; }

    /// <summary>Outputs pooled [1,512] and layer4 [1,512,7,7].</summary>
    public string TwoOutputsPath { get; }

    /// <summary>The CLI next to the test assembly, started as 'featureonnx e2e-worker'.</summary>
    public static WorkerCommand Worker => new(System.IO.Path.Combine(AppContext.BaseDirectory, "featureonnx"), ["e2e-worker"]);

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// extract --e2e on hostile inputs: random bytes, truncated and fuzzed JPEGs and PNGs, mixed with good files. Each bad
/// file must be one line of errors.csv and the good ones must be extracted, whether the checks stop it before the
/// decoder or the worker process dies or hangs on it.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class EndToEndExtractionTests(EndToEndModelFile model, ITestOutputHelper output) : IClassFixture<EndToEndModelFile>
{
    private static string[] CsvLines(string path) => File.ReadAllLines(path).Skip(1).ToArray();

    private static Dictionary<string, string> Errors(string outDir) =>
        CsvLines(Path.Combine(outDir, "errors.csv")).ToDictionary(l => Path.GetFileName(l[..l.IndexOf(',')]), l => l[(l.IndexOf(',') + 1)..]);

    private static string[] Indexed(string outDir) =>
        CsvLines(Path.Combine(outDir, "index.csv")).Select(l => Path.GetFileName(l.Split(',', 2)[1])).ToArray();

    private static void Copy(string dir, string fixture, string name) => File.Copy(Fixtures.PathOf(fixture), Path.Combine(dir, name));

    [Fact]
    public async Task Without_checks_the_worker_contains_libjpeg_exit_and_the_truncation_hang()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        Copy(input, "photos/opencv_fruits.jpg", "a_good.jpg");
        File.WriteAllBytes(Path.Combine(input, "b_random.jpg"), RandomBytes(7, 5000));
        Copy(input, "photos/skimage_chelsea.png", "c_good.png");
        File.WriteAllBytes(Path.Combine(input, "d_truncated.jpg"), File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg"))[..20_000]);
        Copy(input, "photos/opencv_apple.jpg", "e_good.jpg");
        var outDir = Path.Combine(tmp.Path, "out");

        var result = await new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions
        {
            Inputs = [input], OutputDirectory = outDir, Model = model.Path, Worker = EndToEndModelFile.Worker,
            CheckInputs = false, ItemTimeout = TimeSpan.FromSeconds(5),
        });

        var errors = Errors(outDir);
        foreach (var e in errors) output.WriteLine($"{e.Key}: {e.Value}");
        Assert.Equal("completed", result.Status);
        Assert.Equal(["a_good.jpg", "c_good.png", "e_good.jpg"], Indexed(outDir));
        Assert.Contains("decoder process died (exit code 1", errors["b_random.jpg"]);
        Assert.Contains("Not a JPEG file", errors["b_random.jpg"]);
        Assert.Contains("time limit", errors["d_truncated.jpg"]);
        Assert.Contains(result.Warnings, w => w.StartsWith("2 worker process(es)", StringComparison.Ordinal));
        Assert.Equal(new long[] { 3, 512 }, Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy")).Shape);
    }

    [Fact]
    public async Task Random_truncated_and_fuzzed_files_among_good_ones_are_per_item_errors()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        string[] good = ["opencv_baboon.jpg", "skimage_chelsea.png", "opencv_fruits.jpg", "skimage_camera.png", "sklearn_china.jpg"];
        foreach (var g in good) Copy(input, "photos/" + g, "good_" + g);
        File.WriteAllBytes(Path.Combine(input, "random.jpg"), RandomBytes(1, 5000));
        File.WriteAllBytes(Path.Combine(input, "random.png"), [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. RandomBytes(2, 3000)]);
        File.WriteAllBytes(Path.Combine(input, "random_soi.jpg"), [0xFF, 0xD8, 0xFF, .. RandomBytes(3, 3000)]);
        File.WriteAllBytes(Path.Combine(input, "truncated.jpg"), File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_baboon.jpg"))[..20_000]);
        File.WriteAllBytes(Path.Combine(input, "truncated.png"), File.ReadAllBytes(Fixtures.PathOf("photos", "skimage_camera.png"))[..30_000]);
        File.WriteAllBytes(Path.Combine(input, "empty.jpg"), []);
        Copy(input, "jpeg/gen_damaged_420.jpg", "damaged.jpg");
        Copy(input, "generated/cmyk.jpg", "cmyk.jpg");
        Copy(input, "generated/palette.gif", "palette.gif");
        var fuzzed = Fuzz(File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_fruits.jpg")), "jpg", 24, seed: 11)
            .Concat(Fuzz(File.ReadAllBytes(Fixtures.PathOf("photos", "skimage_chelsea.png")), "png", 12, seed: 12)).ToList();
        foreach (var (name, bytes) in fuzzed) File.WriteAllBytes(Path.Combine(input, name), bytes);
        var outDir = Path.Combine(tmp.Path, "out");

        var result = await new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions
        {
            Inputs = [input], OutputDirectory = outDir, Model = model.Path, Worker = EndToEndModelFile.Worker,
            Workers = 2, ItemTimeout = TimeSpan.FromSeconds(10),
        });

        var errors = Errors(outDir);
        var indexed = Indexed(outDir);
        foreach (var e in errors.OrderBy(e => e.Key)) output.WriteLine($"{e.Key}: {e.Value}");
        output.WriteLine($"{indexed.Length} extracted ({indexed.Count(n => n.StartsWith("fuzz", StringComparison.Ordinal))} fuzzed), {errors.Count} failed; {string.Join(" ", result.Warnings)}");
        Assert.Equal("completed", result.Status);
        var all = Directory.EnumerateFiles(input).Select(Path.GetFileName).ToHashSet();
        Assert.Equal(all.Count, indexed.Length + errors.Count);
        Assert.True(all.SetEquals(indexed.Concat(errors.Keys)), "every input is in index.csv or errors.csv");
        Assert.All(good, g => Assert.Contains("good_" + g, indexed));
        foreach (var bad in new[] { "random.jpg", "random.png", "random_soi.jpg", "truncated.jpg", "truncated.png", "empty.jpg", "cmyk.jpg", "palette.gif" })
            Assert.True(errors.ContainsKey(bad), $"{bad} should have failed");
        var (shape, values) = Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy"));
        Assert.Equal(indexed.Length, shape[0]);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));

        // The good rows are the same numbers as an in-process session gives.
        using var session = new EndToEndSession(model.Path);
        for (var row = 0; row < indexed.Length; row++)
        {
            if (!indexed[row].StartsWith("good_", StringComparison.Ordinal)) continue;
            var expected = session.Run(File.ReadAllBytes(Path.Combine(input, indexed[row]))).Single().Floats!;
            Assert.True(values.AsSpan(row * 512, 512).SequenceEqual(expected), indexed[row]);
        }
    }

    [Fact]
    public async Task Without_checks_fuzzed_headers_that_kill_the_decoder_cost_one_item_each()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        var original = File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_fruits.jpg"));
        var random = new Random(21);
        for (var k = 0; k < 16; k++)
        {
            var bytes = (byte[])original.Clone();
            for (var i = 0; i < 3; i++) bytes[2 + random.Next(600)] ^= (byte)(1 + random.Next(255)); // markers and tables
            File.WriteAllBytes(Path.Combine(input, $"fuzz_{k:00}.jpg"), bytes);
        }
        Copy(input, "photos/skimage_chelsea.png", "zz_good.png");
        var outDir = Path.Combine(tmp.Path, "out");

        var result = await new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions
        {
            Inputs = [input], OutputDirectory = outDir, Model = model.Path, Worker = EndToEndModelFile.Worker,
            CheckInputs = false, ItemTimeout = TimeSpan.FromSeconds(5),
        });

        var errors = Errors(outDir);
        var indexed = Indexed(outDir);
        foreach (var e in errors.OrderBy(e => e.Key)) output.WriteLine($"{e.Key}: {e.Value}");
        output.WriteLine($"{indexed.Length} extracted, {errors.Count} failed; {string.Join(" ", result.Warnings)}");
        Assert.Equal("completed", result.Status);
        Assert.Equal(17, indexed.Length + errors.Count);
        Assert.Contains("zz_good.png", indexed);
        Assert.Contains(errors.Values, e => e.Contains("decoder process died", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_bad_file_in_a_batch_fails_alone_and_the_rest_of_the_batch_is_extracted()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        Copy(input, "photos/opencv_fruits.jpg", "a_good.jpg");
        Copy(input, "photos/skimage_chelsea.png", "b_good.png");
        var fruits = File.ReadAllBytes(Fixtures.PathOf("photos", "opencv_fruits.jpg"));
        var bad = (byte[])fruits.Clone();
        var random = new Random(21);
        for (var i = 0; i < 3; i++) bad[2 + random.Next(600)] ^= (byte)(1 + random.Next(255)); // as fuzz_00 of the test above
        File.WriteAllBytes(Path.Combine(input, "c_fuzzed.jpg"), bad);
        File.WriteAllBytes(Path.Combine(input, "d_random.jpg"), RandomBytes(5, 4000));
        Copy(input, "photos/opencv_apple.jpg", "e_good.jpg");
        Copy(input, "generated/exif6.jpg", "f_exif6.jpg");
        var outDir = Path.Combine(tmp.Path, "out");

        var result = await new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions
        {
            Inputs = [input], OutputDirectory = outDir, Model = model.BatchedPath, Worker = EndToEndModelFile.Worker,
            BatchSize = 8, CheckInputs = false, ItemTimeout = TimeSpan.FromSeconds(5),
        });

        var errors = Errors(outDir);
        var indexed = Indexed(outDir);
        foreach (var e in errors) output.WriteLine($"{e.Key}: {e.Value}");
        Assert.Equal("completed", result.Status);
        Assert.Equal(8, result.BatchSize);
        Assert.Contains("d_random.jpg", errors.Keys);
        Assert.Equal(6, indexed.Length + errors.Count);
        Assert.Contains("a_good.jpg", indexed);
        Assert.Contains("b_good.png", indexed);
        Assert.Contains("e_good.jpg", indexed);
        // Rows equal the single-image model's (no header read without checks: every orientation is 1).
        using var single = new EndToEndSession(model.Path);
        var (_, values) = Fixtures.ReadFloatNpy(Path.Combine(outDir, "pooled.npy"));
        for (var row = 0; row < indexed.Length; row++)
        {
            var bytes = File.ReadAllBytes(Path.Combine(input, indexed[row]));
            var expected = single.Run(bytes).Single().Floats!;
            Assert.True(Fixtures.Cosine(values.AsSpan(row * 512, 512), expected) >= 0.999999, indexed[row]);
        }
    }

    [Fact]
    public void Cli_exports_and_extracts_with_itself_as_the_worker()
    {
        using var tmp = new Fixtures.TempDir();
        var input = Directory.CreateDirectory(Path.Combine(tmp.Path, "in")).FullName;
        Copy(input, "photos/skimage_chelsea.png", "good.png");
        File.WriteAllBytes(Path.Combine(input, "random.jpg"), RandomBytes(9, 3000));
        var e2eModel = tmp.File("m.e2e.onnx");
        var (code, text) = RunCli("export-e2e", "--model", "resnet18", "-o", e2eModel);
        output.WriteLine(text);
        Assert.Equal(0, code);
        (code, text) = RunCli("extract", input, "-o", tmp.File("out"), "--e2e", "--model", e2eModel, "--workers", "1", "--quiet");
        output.WriteLine(text);
        Assert.Equal(3, code); // finished, some inputs failed
        Assert.Equal(["good.png"], Indexed(tmp.File("out")));
        Assert.Contains("random.jpg", Errors(tmp.File("out")).Keys);
        (code, text) = RunCli("extract", input, "-o", tmp.File("out2"), "--e2e", "--model", e2eModel, "--layers", "layer1");
        output.WriteLine(text);
        Assert.Equal(1, code);
        Assert.Contains("no float output 'layer1'; its outputs are pooled", text);
        Assert.False(Directory.Exists(tmp.File("out2")));
        // Post-processing as on the C# path, and --resume of a completed run does nothing.
        (code, text) = RunCli("extract", input, "-o", tmp.File("out3"), "--e2e", "--model", e2eModel, "--workers", "1", "--l2", "--quiet");
        Assert.Equal(3, code);
        var (_, unit) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("out3"), "pooled.npy"));
        Assert.Equal(1.0, Math.Sqrt(unit.Sum(v => (double)v * v)), 5);
        (code, text) = RunCli("extract", input, "-o", tmp.File("out3"), "--e2e", "--model", e2eModel, "--workers", "1", "--l2", "--resume");
        Assert.Equal(3, code);
        Assert.Contains("already complete: 1 rows", text);
    }

    [Fact]
    public async Task Layers_choose_among_the_model_outputs_and_post_processing_matches_the_csharp_path()
    {
        using var tmp = new Fixtures.TempDir();
        string[] photos = ["opencv_fruits.jpg", "skimage_chelsea.png", "opencv_baboon.jpg", "sklearn_china.jpg", "skimage_coffee.png", "opencv_apple.jpg"];
        var input = Directory.CreateDirectory(tmp.File("in")).FullName;
        foreach (var p in photos) Copy(input, "photos/" + p, p);
        var pooledThenL2 = new FeatureOnnx.PostProcessing.PostProcessOptions { Pooling = FeatureOnnx.PostProcessing.PoolingMode.Average, L2 = true };
        Task<ExtractionResult> E2e(string dir, IReadOnlyList<string> layers, FeatureOnnx.PostProcessing.PostProcessOptions post) =>
            new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions { Inputs = [input], OutputDirectory = tmp.File(dir), Model = model.TwoOutputsPath, Layers = layers, PostProcess = post });

        // No layers: every float output of the model, as it comes out.
        var all = await E2e("all", [], new());
        Assert.Equal(["layer4", "pooled"], all.Layers.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new long[] { 6, 512, 7, 7 }, all.Layers["layer4"]);
        // layer4 alone, averaged and normalised by the post-processor: resnet18's own pooled output is the average of layer4.
        var chosen = await E2e("chosen", ["layer4"], pooledThenL2);
        Assert.Equal(["layer4"], chosen.Layers.Keys);
        Assert.Equal("avg", chosen.PostProcess!.Pool);
        var (shape, pooledLayer4) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("chosen"), "layer4.npy"));
        Assert.Equal(new long[] { 6, 512 }, shape);
        var (_, modelPooled) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("all"), "pooled.npy"));
        for (var row = 0; row < 6; row++)
        {
            var expected = modelPooled.AsSpan(row * 512, 512).ToArray();
            var norm = (float)Math.Sqrt(expected.Sum(v => (double)v * v));
            for (var c = 0; c < 512; c++)
                Assert.True(Math.Abs(pooledLayer4[row * 512 + c] - expected[c] / norm) < 1e-5f, $"row {row} channel {c}"); // float sums in another order
        }
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => E2e("unknown", ["layer3"], new()));
        Assert.Contains("its outputs are pooled, layer4", unknown.Message);

        // The C# path with the same layer and post-processing: the rows agree within the e2e path's own tolerance
        // (JPEGs are decoded by IJG libjpeg 9 there and libjpeg-turbo here; README: pooled cosine >= 0.9991 on the test photos).
        await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("csharp"), Layers = ["layer4"], PostProcess = pooledThenL2 });
        Assert.Equal(File.ReadAllText(Path.Combine(tmp.File("csharp"), "index.csv")), File.ReadAllText(Path.Combine(tmp.File("chosen"), "index.csv")));
        var (csShape, csRows) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("csharp"), "layer4.npy"));
        Assert.Equal(shape, csShape);
        for (var row = 0; row < 6; row++)
            Assert.True(Fixtures.Cosine(pooledLayer4.AsSpan(row * 512, 512), csRows.AsSpan(row * 512, 512)) >= 0.999, $"row {row}");

        // PCA fitted on the C# path's pooled rows, applied by both paths: projecting onto orthonormal components cannot
        // move two rows further apart than they were, so each e2e row is within its pooled distance of the C# one.
        var fit = new FeatureOnnx.PostProcessing.PcaFitter(new FeatureOnnx.PostProcessing.PcaFitOptions { Components = 4 }).Fit(csRows, 512).Model;
        var withPca = new FeatureOnnx.PostProcessing.PostProcessOptions { Pooling = FeatureOnnx.PostProcessing.PoolingMode.Average, Pca = fit };
        var e2ePca = await E2e("pca", ["layer4"], withPca);
        await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("csharp-pca"), Layers = ["layer4"], PostProcess = withPca });
        Assert.Equal(new long[] { 6, 4 }, e2ePca.Layers["layer4"]);
        var (_, a) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("pca"), "layer4.npy"));
        var (_, b) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("csharp-pca"), "layer4.npy"));
        await new ExtractionPipeline().RunAsync(new ExtractionOptions { Inputs = [input], OutputDirectory = tmp.File("csharp-avg"), Layers = ["layer4"], PostProcess = withPca with { Pca = null } });
        var (_, csAvg) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("csharp-avg"), "layer4.npy"));
        var (_, e2eAvg) = Fixtures.ReadFloatNpy(Path.Combine(tmp.File("all"), "pooled.npy"));
        for (var row = 0; row < 6; row++)
        {
            var projected = Distance(a.AsSpan(row * 4, 4), b.AsSpan(row * 4, 4));
            var pooled = Distance(e2eAvg.AsSpan(row * 512, 512), csAvg.AsSpan(row * 512, 512));
            output.WriteLine($"row {row}: pooled distance {pooled:G4}, after PCA {projected:G4}");
            Assert.True(projected <= pooled + 1e-4, $"row {row}: {projected} > {pooled}");
        }
    }

    private static double Distance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = 0.0;
        for (var i = 0; i < a.Length; i++) sum += (a[i] - (double)b[i]) * (a[i] - b[i]);
        return Math.Sqrt(sum);
    }

    private static (int Code, string Output) RunCli(params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(EndToEndModelFile.Worker.FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    [Fact]
    public async Task A_worker_that_cannot_load_the_model_fails_the_run_with_its_reason()
    {
        using var tmp = new Fixtures.TempDir();
        var bogus = tmp.File("bogus.e2e.onnx");
        File.WriteAllText(bogus, "not a model");
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions
        {
            Inputs = [Fixtures.PathOf("photos", "opencv_fruits.jpg")], OutputDirectory = tmp.File("out"), Model = bogus, Worker = EndToEndModelFile.Worker,
        }));
        output.WriteLine(e.Message);
        Assert.Contains("could not load", e.Message);
    }

    private static byte[] RandomBytes(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Seeded mutations: byte flips in headers or data, truncations, spliced garbage.</summary>
    private static IEnumerable<(string Name, byte[] Bytes)> Fuzz(byte[] original, string extension, int count, int seed)
    {
        var random = new Random(seed);
        for (var k = 0; k < count; k++)
        {
            var bytes = (byte[])original.Clone();
            switch (k % 4)
            {
                case 0: // a few flips in the first 600 bytes (markers, tables, IHDR)
                    for (var i = 0; i < 1 + random.Next(4); i++) bytes[2 + random.Next(Math.Min(600, bytes.Length - 2))] ^= (byte)(1 + random.Next(255));
                    break;
                case 1: // flips anywhere
                    for (var i = 0; i < 1 + random.Next(16); i++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
                case 2: // truncated, then an end marker appended so that the structure check may pass
                    bytes = [.. bytes[..random.Next(100, bytes.Length)], .. extension == "jpg" ? new byte[] { 0xFF, 0xD9 } : [0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82]];
                    break;
                default: // a run of garbage spliced into the middle
                    var at = random.Next(20, bytes.Length - 200);
                    var junk = new byte[random.Next(1, 200)];
                    random.NextBytes(junk);
                    junk.CopyTo(bytes, at);
                    break;
            }
            yield return ($"fuzz_{k:00}.{extension}", bytes);
        }
    }
}
