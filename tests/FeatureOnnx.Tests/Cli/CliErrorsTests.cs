using FeatureOnnx.Cli;

namespace FeatureOnnx.Tests.Cli;

/// <summary>Console.Error is swapped for a capture: nothing else may run meanwhile.</summary>
[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>Nothing escapes as a stack trace: a failed run is one <c>error:</c> line and exit code 1.</summary>
[Trait("Category", TestCategory.Fast)]
[Collection("Console")]
public sealed class CliErrorsTests
{
    private static (int Code, string Stderr) Guarded(Func<Task<int>> body)
    {
        var previous = Console.Error;
        using var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            return (CliErrors.GuardAsync(body).GetAwaiter().GetResult(), captured.ToString());
        }
        finally
        {
            Console.SetError(previous);
        }
    }

    [Fact]
    public void An_unexpected_exception_is_one_error_line_naming_it_and_exit_1()
    {
        var (code, stderr) = Guarded(() => throw new NullReferenceException("Object reference not set to an instance of an object.\n   at Somewhere()"));
        Assert.Equal(1, code);
        Assert.Equal("error: unexpected NullReferenceException: Object reference not set to an instance of an object.\n", stderr.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void An_expected_failure_is_its_message_and_a_stop_before_any_output_is_130()
    {
        Assert.Equal((1, "error: out/ already holds a run\n"), Tuple(Guarded(() => throw new IOException("out/ already holds a run"))));
        var (code, stderr) = Guarded(() => throw new OperationCanceledException());
        Assert.Equal(130, code);
        Assert.StartsWith("interrupted before any input was processed", stderr);
    }

    [Theory]
    // What the library says (naming its settings) against what the CLI shows (naming the flags).
    [InlineData("CUDA execution provider could not be created: libcudnn.so.9 is missing. Set SessionSettings.FallbackToCpu to run on the CPU instead.",
        "error: CUDA execution provider could not be created: libcudnn.so.9 is missing. Pass --fallback cpu to run on the CPU instead.\n")]
    [InlineData("device_id: the device is not a CUDA option; choose it with SessionSettings.DeviceId.",
        "error: device_id: the device is not a CUDA option; choose it with --provider cuda:N.\n")]
    [InlineData("maps.npy: rows of [8,3,4] (96 floats) but the PCA expects 12 features. Pool the maps first (PostProcessOptions.Pooling = Average) or fit the PCA on what you feed it.",
        "error: maps.npy: rows of [8,3,4] (96 floats) but the PCA expects 12 features. Pool the maps first (--pool avg) or fit the PCA on what you feed it.\n")]
    [InlineData("out/ holds an unfinished run (job.json). Set ExtractionOptions.Resume to continue it, or ExtractionOptions.Overwrite to start again.",
        "error: out/ holds an unfinished run (job.json). Pass --resume to continue it, or --overwrite to start again.\n")]
    [InlineData("out/ holds a run started with other settings (model). Resume with the same settings, or set ExtractionOptions.Overwrite, or choose another folder.",
        "error: out/ holds a run started with other settings (model). Resume with the same settings, or pass --overwrite, or choose another folder.\n")]
    public void Library_settings_in_a_message_are_shown_as_flags(string library, string shown) =>
        Assert.Equal((1, shown), Tuple(Guarded(() => throw new ArgumentException(library))));

    [Fact]
    public void A_setting_exception_is_prefixed_with_its_flag()
    {
        var (code, stderr) = Guarded(() => throw new SettingException("BenchmarkRequest.Precisions", "model 'm' is stored at fp16 and runs at that precision only."));
        Assert.Equal((1, "error: --precision: model 'm' is stored at fp16 and runs at that precision only.\n"), Tuple((code, stderr)));
    }

    [Fact]
    public void Every_setting_the_table_names_exists_in_the_library()
    {
        // A renamed property would leave its old name in the table and the new one shown to users unmapped.
        var library = typeof(FeatureOnnx.Models.ModelManifest).Assembly;
        foreach (var key in CliErrors.Flags.Keys)
        {
            var name = key.StartsWith("Set ", StringComparison.Ordinal) ? key[4..] : key;
            name = name.Split(' ')[0];
            var (type, member) = (name[..name.LastIndexOf('.')], name[(name.LastIndexOf('.') + 1)..]);
            var found = library.GetTypes().SingleOrDefault(t => t.Name == type);
            Assert.True(found?.GetMember(member).Length > 0, $"CliErrors.Flags names {type}.{member}, which the library does not have");
        }
    }

    private static (int, string) Tuple((int Code, string Stderr) r) => (r.Code, r.Stderr.ReplaceLineEndings("\n"));
}
