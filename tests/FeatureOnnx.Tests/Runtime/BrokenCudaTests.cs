using System.Diagnostics;
using System.Text.Json;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Tests.Runtime;

/// <summary>
/// fixtures/cuda-stub built once: fake libcuda.so.1, libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10 and
/// libcudnn.so.9 with the sonames and symbol versions ONNX Runtime's real CUDA provider library links against, each
/// failing as CUDA_STUB_* environment variables say (cuda_stub.c). A CLI run with LD_LIBRARY_PATH on them is a
/// machine whose CUDA is installed but broken in that one way, which is what users hit and CI cannot otherwise show.
/// </summary>
public sealed class CudaStubLibraries : IDisposable
{
    private readonly Fixtures.TempDir _dir = new();

    public CudaStubLibraries()
    {
        if (Fixtures.CCompiler is not { } compiler)
        {
            SkipReason = Fixtures.NoCompiler("the CUDA stub libraries");
            return;
        }
        Fixtures.Build("bash", [Fixtures.PathOf("cuda-stub", "build.sh"), Folder], "the CUDA stub libraries (cuda-stub/build.sh)", compiler: compiler);
        HasCudaProvider = File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libonnxruntime_providers_cuda.so"))
            || File.Exists(Path.Combine(AppContext.BaseDirectory, "libonnxruntime_providers_cuda.so"));
    }

    public string Folder => Path.Combine(_dir.Path, "lib");

    /// <summary>A folder of three test photos to extract.</summary>
    public string Photos
    {
        get
        {
            var folder = Path.Combine(_dir.Path, "photos");
            if (Directory.Exists(folder)) return folder;
            Directory.CreateDirectory(folder);
            foreach (var name in new[] { "opencv_baboon.jpg", "libjxl_flower.png.im_q85_444_1x2.jpg", "libjxl_cvo9xd_keong_macan_grayscale.png" })
                File.Copy(Fixtures.PathOf("photos", name), Path.Combine(folder, name));
            return folder;
        }
    }

    public string? SkipReason { get; }

    /// <summary>Whether this build carries ONNX Runtime's CUDA provider (the default Gpu.Linux flavour; not -p:OrtFlavor=cpu).</summary>
    public bool HasCudaProvider { get; }

    /// <summary>The built-in resnet18 as an end-to-end model (export-e2e), made on first use.</summary>
    public string EndToEndModel
    {
        get
        {
            var path = Path.Combine(_dir.Path, "resnet18.e2e.onnx");
            if (File.Exists(path)) return path;
            var catalog = new FeatureOnnx.Models.ModelCatalog();
            File.WriteAllBytes(path, FeatureOnnx.Models.EndToEndModelBuilder.Build(catalog.Resolve("resnet18"), ["pooled"], catalog).OnnxBytes);
            return path;
        }
    }

    public void Dispose() => _dir.Dispose();
}

[Trait("Category", TestCategory.Process)]
public sealed class BrokenCudaTests(CudaStubLibraries stubs, ITestOutputHelper output) : IClassFixture<CudaStubLibraries>
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "featureonnx.dll");

    /// <summary>Three test photos (two JPEGs, a PNG) in a folder of the fixture's.</summary>
    private string Samples => stubs.Photos;

    private sealed record Result(int ExitCode, string Out, string Err);

    /// <summary>Runs the CLI with the stub libraries first on the library path and <paramref name="env"/> as the failure.</summary>
    private Result Run(IReadOnlyDictionary<string, string> env, string? libraries, params string[] args)
    {
        Skip.If(stubs.SkipReason is not null, stubs.SkipReason);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["LD_LIBRARY_PATH"] = libraries ?? stubs.Folder;
        foreach (var (key, value) in env) psi.Environment[key] = value;
        using var process = Process.Start(psi)!;
        var err = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        output.WriteLine($"$ featureonnx {string.Join(' ', args)}  [{string.Join(' ', env.Select(p => $"{p.Key}={p.Value}"))}] -> {process.ExitCode}\n{stdout}{err.Result}");
        return new Result(process.ExitCode, stdout, err.Result);
    }

    private static readonly Dictionary<string, string> NoDevice = new() { ["CUDA_STUB_DEVICES"] = "0" };

    private static readonly Dictionary<string, string> OldDriver = new()
    {
        ["CUDA_STUB_DEVICES"] = "1", ["CUDA_STUB_DRIVER_VERSION"] = "12040", ["CUDA_STUB_RUNTIME_ERROR"] = "35",
    };

    // cudaErrorDevicesUnavailable: the driver lists the GPU, the runtime cannot use it (exclusive mode, held elsewhere).
    private static readonly Dictionary<string, string> BusyDevice = new() { ["CUDA_STUB_DEVICES"] = "1", ["CUDA_STUB_RUNTIME_ERROR"] = "46" };

    [SkippableFact]
    public void Driver_without_a_device_is_named_by_providers_and_extract_fails_fast()
    {
        var providers = Run(NoDevice, null, "providers");
        Assert.Equal(0, providers.ExitCode);
        Assert.Contains("cuda    NOT usable: the NVIDIA driver is installed but sees no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE)", providers.Out);
        Assert.Contains("--gpus all", providers.Out);
        Assert.Contains("driver: supports CUDA 13.0", providers.Out);
        foreach (var (name, _) in ProviderDiagnostics.CudaDependencies)
            Assert.Matches($@"found +{name.Replace(".", @"\.")} ", providers.Out);
        Assert.Contains("cuDNN 9 (version 9.10.0)", providers.Out);
        Assert.DoesNotContain("device 0:", providers.Out);

        using var tmp = new Fixtures.TempDir();
        var extract = Run(NoDevice, null, "extract", Samples, "-o", tmp.Path, "--provider", "cuda", "--overwrite");
        Assert.Equal(1, extract.ExitCode);
        Assert.Contains("error: CUDA execution provider could not be created: the NVIDIA driver is installed but sees no CUDA device", extract.Err);
        Assert.Contains("Pass --fallback cpu", extract.Err);
        Assert.Empty(Directory.GetFiles(tmp.Path));
    }

    [SkippableFact]
    public void Driver_older_than_cuda_13_is_named_with_the_version_it_supports()
    {
        var providers = Run(OldDriver, null, "providers");
        Assert.Contains("NOT usable: the NVIDIA driver supports CUDA 12.4, and ONNX Runtime 1.31's CUDA provider needs CUDA 13.0: install NVIDIA driver 580 or newer.", providers.Out);
        Assert.Contains("device 0: Stub GPU, compute capability 9.0, 16.0 GiB", providers.Out);

        using var tmp = new Fixtures.TempDir();
        var extract = Run(OldDriver, null, "extract", Samples, "-o", tmp.Path, "--provider", "cuda");
        Assert.Equal(1, extract.ExitCode);
        Assert.Contains("supports CUDA 12.4", extract.Err);
    }

    [SkippableFact]
    public void A_device_number_the_driver_lacks_lists_the_devices_there_are()
    {
        using var tmp = new Fixtures.TempDir();
        var extract = Run(new Dictionary<string, string> { ["CUDA_STUB_DEVICES"] = "2" }, null,
            "extract", Samples, "-o", tmp.Path, "--provider", "cuda:3");
        Assert.Equal(1, extract.ExitCode);
        Assert.Contains("there is no CUDA device 3: the driver sees 2 (0: Stub GPU, 1: Stub GPU). Use device 0..1 (--provider cuda:N).", extract.Err);
    }

    [SkippableFact]
    public void A_gpu_older_than_cuda_13_supports_is_refused_with_its_compute_capability()
    {
        var providers = Run(new Dictionary<string, string> { ["CUDA_STUB_DEVICES"] = "1", ["CUDA_STUB_CC"] = "61" }, null, "providers");
        Assert.Contains("NOT usable: CUDA device 0 (Stub GPU) has compute capability 6.1, and CUDA 13 (this ONNX Runtime's CUDA provider) supports 7.5 (Turing) and newer.", providers.Out);
    }

    [SkippableFact]
    public void A_missing_library_is_named_even_when_the_driver_is_fine()
    {
        Skip.If(NativeLibraryLoads("libcudnn.so.9"), "a real libcudnn.so.9 is on this machine's default library path");
        using var tmp = new Fixtures.TempDir();
        foreach (var file in Directory.GetFiles(stubs.Folder).Where(f => !f.EndsWith("libcudnn.so.9")))
            File.Copy(file, Path.Combine(tmp.Path, Path.GetFileName(file)));
        var providers = Run(new Dictionary<string, string> { ["CUDA_STUB_DEVICES"] = "1" }, tmp.Path, "providers");
        Assert.Contains("NOT usable: libcudnn.so.9 (cuDNN 9) not found: install it", providers.Out);
        Assert.Contains("MISSING libcudnn.so.9", providers.Out);
        Assert.Contains("device 0: Stub GPU", providers.Out);
    }

    /// <summary>
    /// The one failure ONNX Runtime only reports when the session starts: every check before it passes. Strict
    /// extraction names it; with --fallback cpu the run goes on and equals a plain CPU run byte for byte.
    /// </summary>
    [SkippableFact]
    public void A_device_that_fails_at_session_start_is_strict_by_default_and_falls_back_when_asked()
    {
        Skip.IfNot(stubs.HasCudaProvider, "this build has no CUDA provider library (-p:OrtFlavor=cpu): nothing reaches ONNX Runtime's CUDA code");
        var providers = Run(BusyDevice, null, "providers");
        Assert.Contains("cuda    NOT usable: CUDA error 46 (CUDA-capable device(s) is/are busy or unavailable) in cudaSetDevice: the GPU is busy or unavailable", providers.Out);

        using var tmp = new Fixtures.TempDir();
        var strict = Run(BusyDevice, null, "extract", Samples, "-o", tmp.File("strict"), "--provider", "cuda");
        Assert.Equal(1, strict.ExitCode);
        Assert.Contains("error: CUDA execution provider could not start a session: CUDA error 46", strict.Err);
        Assert.Contains("Pass --fallback cpu", strict.Err);

        var fallback = Run(BusyDevice, null, "extract", Samples, "-o", tmp.File("fallback"), "--provider", "cuda", "--fallback", "cpu", "-q");
        Assert.Equal(0, fallback.ExitCode);
        Assert.Contains("warning: CUDA unavailable (CUDA error 46", fallback.Err);
        using (var run = JsonDocument.Parse(File.ReadAllText(tmp.File("fallback/run.json"))))
        {
            Assert.Equal("cpu", run.RootElement.GetProperty("provider").GetString());
            Assert.Contains("cudaSetDevice", run.RootElement.GetProperty("providerFallback").GetString());
        }
        var cpu = Run(new Dictionary<string, string>(), null, "extract", Samples, "-o", tmp.File("cpu"), "-q");
        Assert.Equal(0, cpu.ExitCode);
        Assert.Equal(File.ReadAllBytes(tmp.File("cpu/pooled.npy")), File.ReadAllBytes(tmp.File("fallback/pooled.npy")));
        Assert.Equal(File.ReadAllText(tmp.File("cpu/index.csv")), File.ReadAllText(tmp.File("fallback/index.csv")));
    }

    /// <summary>extract --e2e runs the model in worker processes: their choice must reach run.json and the exit code.</summary>
    [SkippableFact]
    public void End_to_end_workers_report_a_cuda_failure_strictly_or_their_fallback()
    {
        Skip.IfNot(stubs.HasCudaProvider, "this build has no CUDA provider library (-p:OrtFlavor=cpu)");
        Skip.If(stubs.SkipReason is not null, stubs.SkipReason);
        using var tmp = new Fixtures.TempDir();
        var model = stubs.EndToEndModel;
        var strict = Run(BusyDevice, null, "extract", Samples, "-o", tmp.File("strict"), "--e2e", "--model", model, "--provider", "cuda");
        Assert.Equal(1, strict.ExitCode);
        Assert.Contains("error: CUDA execution provider could not start a session: CUDA error 46", strict.Err);
        Assert.DoesNotContain("Unhandled exception", strict.Err);

        var fallback = Run(BusyDevice, null, "extract", Samples, "-o", tmp.File("fallback"), "--e2e", "--model", model, "--provider", "cuda", "--fallback", "cpu", "-q");
        Assert.Equal(0, fallback.ExitCode);
        Assert.Contains("warning: CUDA unavailable (CUDA error 46", fallback.Err);
        using (var run = JsonDocument.Parse(File.ReadAllText(tmp.File("fallback/run.json"))))
        {
            Assert.Equal("cpu", run.RootElement.GetProperty("provider").GetString());
            Assert.Contains("cudaSetDevice", run.RootElement.GetProperty("providerFallback").GetString());
        }
        var cpu = Run(new Dictionary<string, string>(), null, "extract", Samples, "-o", tmp.File("cpu"), "--e2e", "--model", model, "-q");
        Assert.Equal(0, cpu.ExitCode);
        Assert.Equal(File.ReadAllBytes(tmp.File("cpu/pooled.npy")), File.ReadAllBytes(tmp.File("fallback/pooled.npy")));
    }

    [SkippableFact]
    public void Bench_skips_a_device_that_fails_at_session_start_with_the_reason_and_still_writes_its_report()
    {
        Skip.IfNot(stubs.HasCudaProvider, "this build has no CUDA provider library (-p:OrtFlavor=cpu)");
        using var tmp = new Fixtures.TempDir();
        var bench = Run(BusyDevice, null, "bench", "--providers", "cpu,cuda", "--batch", "1", "--warmup", "0", "--iters", "1",
            "--layers", "layer1", "-o", tmp.Path, "-q");
        Assert.Equal(0, bench.ExitCode);
        using var report = JsonDocument.Parse(File.ReadAllText(tmp.File("report.json")));
        var skipped = Assert.Single(report.RootElement.GetProperty("skipped").EnumerateArray());
        Assert.Equal("cuda:0", skipped.GetProperty("provider").GetString());
        Assert.StartsWith("CUDA error 46 (CUDA-capable device(s) is/are busy or unavailable) in cudaSetDevice", skipped.GetProperty("reason").GetString());
        Assert.All(report.RootElement.GetProperty("results").EnumerateArray(), r => Assert.Equal("cpu", r.GetProperty("provider").GetString()));
        Assert.True(new FileInfo(tmp.File("report.svg")).Length > 0);
    }

    private static bool NativeLibraryLoads(string name)
    {
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad(name, out var handle)) return false;
        System.Runtime.InteropServices.NativeLibrary.Free(handle);
        return true;
    }
}
