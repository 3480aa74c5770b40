using System.Text.Json;
using FeatureOnnx.Tests.Cli;

namespace FeatureOnnx.Tests.Preprocessing;

/// <summary>
/// Which JPEG decoder a run uses, as a user sees it: the CLI in a child process (FEATUREONNX_TURBOJPEG is read once per
/// process), run.json's <c>decoders</c> and <c>warnings</c>, and the exit code.
/// </summary>
[Trait("Category", TestCategory.Process)]
public sealed class DecoderSelectionTests(ITestOutputHelper output)
{
    private (int Code, string Text) Extract(string outDir, string? turboJpeg)
    {
        var result = CliProcess.Run(CliProcess.StartInfo(["extract", Fixtures.PathOf("photos", "opencv_fruits.jpg"), "-o", outDir, "--quiet"],
            new Dictionary<string, string?> { ["FEATUREONNX_TURBOJPEG"] = turboJpeg }));
        var text = result.Out + result.Err;
        output.WriteLine($"FEATUREONNX_TURBOJPEG={turboJpeg ?? "(unset)"} -> exit {result.ExitCode}\n{text}");
        return (result.ExitCode, text);
    }

    private static JsonElement RunJson(string outDir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "run.json"))).RootElement;

    [SkippableFact]
    public void A_default_run_decodes_JPEG_with_the_bundled_libjpeg_turbo_and_says_so()
    {
        Fixtures.RequireTurboJpeg();
        using var tmp = new Fixtures.TempDir();
        var (code, _) = Extract(tmp.File("out"), null);
        Assert.Equal(0, code);
        var run = RunJson(tmp.File("out"));
        Assert.Equal($"libjpeg-turbo 2.1.5 (bundled: {Path.Combine(AppContext.BaseDirectory, "libturbojpeg.so.0")})", run.GetProperty("decoders").GetProperty("jpeg").GetString());
        Assert.Equal("ImageSharp 2.1.13", run.GetProperty("decoders").GetProperty("other").GetString());
        Assert.Empty(run.GetProperty("warnings").EnumerateArray());
    }

    [Fact]
    public void A_missing_library_named_by_the_environment_is_an_error_not_a_fallback()
    {
        using var tmp = new Fixtures.TempDir();
        var missing = tmp.File("no-such-libturbojpeg.so.0");
        var (code, text) = Extract(tmp.File("out"), missing);
        Assert.Equal(1, code);
        Assert.Contains($"error: FEATUREONNX_TURBOJPEG={missing}: no such file.", text);
        Assert.Contains("Unset FEATUREONNX_TURBOJPEG to use the libjpeg-turbo shipped with FeatureOnnx", text);
        Assert.False(File.Exists(Path.Combine(tmp.File("out"), "run.json")));
    }

    [Fact]
    public void ImageSharp_for_JPEG_is_one_warning_line_and_recorded_in_run_json()
    {
        using var tmp = new Fixtures.TempDir();
        var (code, text) = Extract(tmp.File("out"), "off");
        Assert.Equal(0, code);
        var warning = Assert.Single(text.Split('\n'), l => l.Contains("ImageSharp", StringComparison.Ordinal));
        Assert.StartsWith("warning: JPEG files are decoded by ImageSharp, not libjpeg-turbo (disabled by FEATUREONNX_TURBOJPEG=off)", warning);
        var run = RunJson(tmp.File("out"));
        Assert.Equal("ImageSharp 2.1.13", run.GetProperty("decoders").GetProperty("jpeg").GetString());
        Assert.Contains(run.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("not PIL-exact", StringComparison.Ordinal));
    }
}
