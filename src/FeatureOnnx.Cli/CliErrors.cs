using FeatureOnnx.Models;
using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Cli;

/// <summary>Exit codes and the one place expected failures become a one-line message instead of a stack trace.</summary>
internal static class CliErrors
{
    /// <summary>Success.</summary>
    public const int Ok = 0;
    /// <summary>The command could not run (bad arguments, model, files).</summary>
    public const int Failed = 1;
    /// <summary>The run finished but some inputs could not be used (see errors.csv).</summary>
    public const int SomeInputsFailed = 3;
    /// <summary>Stopped by Ctrl+C / SIGTERM after flushing what was done.</summary>
    public const int Interrupted = 130;

    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e)
        {
            return Report(e);
        }
    }

    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e)
        {
            return Report(e);
        }
    }

    /// <summary>The library's message, with the option that lifts the refusal where the library cannot name it.</summary>
    private static string Describe(Exception e) => e switch
    {
        FeatureOnnx.Sinks.OutputFolderException => $"{e.Message} Or pass --overwrite to write into it anyway.",
        _ => e.Message,
    };

    /// <summary>Refuses to replace an existing output file unless --overwrite was given (as extract, merge and bench refuse).</summary>
    public static void RefuseExisting(string path, bool overwrite)
    {
        if (File.Exists(path) && !overwrite)
            throw new IOException($"{path} already exists. Choose another file or pass --overwrite to replace it.");
    }

    // Nothing escapes as a stack trace: what went wrong with the run is one line (a bug says what it was, for the report).
    private static int Report(Exception e)
    {
        if (e is OperationCanceledException)
        {
            Console.Error.WriteLine("interrupted before any input was processed; nothing was written.");
            return Interrupted;
        }
        Console.Error.WriteLine(IsExpected(e) ? $"error: {Describe(e)}" : $"error: unexpected {e.GetType().Name}: {e.Message.Split('\n')[0]}");
        return Failed;
    }

    private static bool IsExpected(Exception e) => e is ManifestException or FileNotFoundException or DirectoryNotFoundException
        or InvalidDataException or ArgumentException or ExecutionProviderException or Preprocessing.DecoderUnavailableException or OnnxRuntimeException or IOException or UnauthorizedAccessException;
}
