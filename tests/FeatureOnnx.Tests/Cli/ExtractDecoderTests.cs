using System.Runtime.InteropServices;
using FeatureOnnx.Tests.Cuda;
using FeatureOnnx.Tests.Runtime;

namespace FeatureOnnx.Tests.Cli;

/// <summary>
/// <c>extract --decoder</c> on a machine without a usable GPU: what <c>--decoder gpu</c> says is missing (the driver,
/// then nvJPEG, then NVRTC: fixtures/cuda-stub gives a driver with one device, fixtures/nvjpeg-stub an nvJPEG), and
/// that <c>--fallback cpu</c> and <c>auto</c> give the CPU path's exact features.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class ExtractDecoderTests(CudaStubLibraries cuda, NvJpegStubLibraries nvjpeg, ITestOutputHelper output)
    : IClassFixture<CudaStubLibraries>, IClassFixture<NvJpegStubLibraries>
{
    private CliProcess.Result Run(Dictionary<string, string?> environment, params string[] args)
    {
        Skip.If(cuda.SkipReason is not null, cuda.SkipReason);
        Skip.If(nvjpeg.SkipReason is not null, nvjpeg.SkipReason);
        // Nothing of a real CUDA install may answer in place of the fakes.
        foreach (var name in new[] { "CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "FEATUREONNX_NVJPEG", "FEATUREONNX_NVRTC" })
            environment.TryAdd(name, null);
        var result = CliProcess.Run(CliProcess.StartInfo(args, environment));
        output.WriteLine($"$ featureonnx {string.Join(' ', args)} -> {result.ExitCode}\n{result.Out}{result.Err}");
        return result;
    }

    [SkippableFact]
    public void Gpu_decoder_without_a_driver_fails_naming_it_and_the_fix_and_writes_nothing()
    {
        Skip.If(NativeLibrary.TryLoad("libcuda.so.1", out _), "an NVIDIA driver is installed here");
        using var tmp = new Fixtures.TempDir();
        var empty = Directory.CreateDirectory(Path.Combine(tmp.Path, "no-libraries")).FullName;
        var run = Run(new() { ["LD_LIBRARY_PATH"] = empty }, "extract", cuda.Photos, "-o", Path.Combine(tmp.Path, "out"), "--provider", "cuda", "--decoder", "gpu", "-q");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("error: --decoder gpu: the GPU decoder cannot run here: libcuda.so.1 not loadable (the NVIDIA driver); install the NVIDIA driver.", run.Err);
        Assert.Contains("Use --decoder cpu (or auto), or add --fallback cpu", run.Err);
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "out")));
    }

    [SkippableFact]
    public void Gpu_decoder_names_nvJPEG_then_NVRTC_when_the_driver_is_there_but_they_are_not()
    {
        using var tmp = new Fixtures.TempDir();
        var missingJpeg = Path.Combine(tmp.Path, "nowhere", "libnvjpeg.so.13");
        var run = Run(new() { ["LD_LIBRARY_PATH"] = cuda.Folder, ["CUDA_STUB_DEVICES"] = "1", ["FEATUREONNX_NVJPEG"] = missingJpeg },
            "extract", cuda.Photos, "-o", Path.Combine(tmp.Path, "a"), "--provider", "cuda", "--decoder", "gpu", "-q");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"error: --decoder gpu: the GPU decoder cannot run here: FEATUREONNX_NVJPEG={missingJpeg} does not load", run.Err);

        var missingRtc = Path.Combine(tmp.Path, "nowhere", "libnvrtc.so.13");
        run = Run(new() { ["LD_LIBRARY_PATH"] = cuda.Folder, ["CUDA_STUB_DEVICES"] = "1", ["FEATUREONNX_NVJPEG"] = nvjpeg.WithHardware, ["FEATUREONNX_NVRTC"] = missingRtc },
            "extract", cuda.Photos, "-o", Path.Combine(tmp.Path, "b"), "--provider", "cuda", "--decoder", "gpu", "-q");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"error: --decoder gpu: the GPU decoder cannot run here: FEATUREONNX_NVRTC={missingRtc} does not load", run.Err);
    }

    [SkippableFact]
    public void Fallback_cpu_warns_in_one_line_and_gives_the_CPU_paths_features()
    {
        using var tmp = new Fixtures.TempDir();
        var cpu = Run(new(), "extract", cuda.Photos, "-o", Path.Combine(tmp.Path, "cpu"), "--decoder", "cpu", "-q");
        Assert.Equal(0, cpu.ExitCode);
        Assert.DoesNotContain("GPU decoder", cpu.Err);

        var fallback = Run(new(), "extract", cuda.Photos, "-o", Path.Combine(tmp.Path, "fallback"), "--decoder", "gpu", "--fallback", "cpu", "-q");
        Assert.Equal(0, fallback.ExitCode);
        var warnings = fallback.Err.Split('\n').Where(l => l.Contains("GPU decoder")).ToList();
        Assert.Equal(["warning: the GPU decoder cannot run here: it feeds the CUDA execution provider, and this run is on the CPU provider. Decoding on the CPU instead."], warnings);

        var auto = Run(new(), "extract", cuda.Photos, "-o", Path.Combine(tmp.Path, "auto"), "-q");
        Assert.Equal(0, auto.ExitCode);
        Assert.DoesNotContain("GPU decoder", auto.Err);

        var expected = File.ReadAllBytes(Path.Combine(tmp.Path, "cpu", "pooled.npy"));
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(tmp.Path, "fallback", "pooled.npy")));
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(tmp.Path, "auto", "pooled.npy")));
        Assert.Equal(3, Fixtures.ReadFloatNpy(Path.Combine(tmp.Path, "cpu", "pooled.npy")).Shape[0]);
    }

    [SkippableFact]
    public void Providers_reports_nvJPEG_where_it_was_found_its_version_and_the_hardware_backend()
    {
        var run = Run(new() { ["LD_LIBRARY_PATH"] = nvjpeg.Folder }, "providers");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains($"        nvJPEG 13.0.2: {nvjpeg.WithHardware} (LD_LIBRARY_PATH)", run.Out);
        Assert.Contains("        hardware backend: available (7 JPEG engines)", run.Out);

        run = Run(new() { ["LD_LIBRARY_PATH"] = nvjpeg.Folder, ["NVJPEG_STUB_NO_HARDWARE"] = "1" }, "providers");
        Assert.Contains("        hardware backend: unavailable (nvjpegCreateEx(NVJPEG_BACKEND_HARDWARE) returned NVJPEG_STATUS_ARCH_MISMATCH): the default (CUDA) backend decodes", run.Out);
        Assert.Contains("gpu decoder (extract --decoder gpu): NOT usable", run.Out);
    }
}
