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

    private static (int, string) Tuple((int Code, string Stderr) r) => (r.Code, r.Stderr.ReplaceLineEndings("\n"));
}
