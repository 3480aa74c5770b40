namespace FeatureOnnx.Tests;

/// <summary>
/// Values of the xunit trait "Category" that every test carries, so that a subset can be run:
/// <c>dotnet test FeatureOnnx.sln -c Release --filter Category=Fast</c> (README, section Tests).
/// </summary>
internal static class TestCategory
{
    /// <summary>In-process, no child process, no Python or torch, no benchmark run: the subset to run after each edit.</summary>
    public const string Fast = "Fast";

    /// <summary>Starts child processes: the CLI, end-to-end workers, Python/torch exports, or a C compiler for CUDA stubs.</summary>
    public const string Process = "Process";

    /// <summary>In-process but long (over ~5 s here): a real backbone over the photo set, end-to-end model sessions, whole benchmark runs.</summary>
    public const string Slow = "Slow";
}
