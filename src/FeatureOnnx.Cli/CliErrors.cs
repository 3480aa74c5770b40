using System.CommandLine;
using System.Text.RegularExpressions;
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
        SettingException s when Flags.TryGetValue(s.Setting, out var flag) => $"{flag}: {InFlags(s.Message)}",
        _ => InFlags(e.Message),
    };

    /// <summary>
    /// The library's settings as the command line spells them: a library message names a setting (Type.Property, with
    /// the verb that changes it where one reads better) and the CLI shows the flag instead. The one table of the two
    /// spellings; a library message naming a setting not listed here shows the property name.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Flags { get; } = new Dictionary<string, string>
    {
        ["Set SessionSettings.FallbackToCpu"] = "Pass --fallback cpu",
        ["SessionSettings.FallbackToCpu"] = "--fallback cpu",
        ["SessionSettings.DeviceId"] = "--provider cuda:N",
        ["SessionSettings.Cuda"] = "--cuda-options",
        ["ProviderDiagnostics.Diagnose"] = "'featureonnx providers'",
        ["ImageDecoderOptions.MaxPixels"] = "--max-pixels",
        ["PostProcessOptions.Pooling = Average or Flatten"] = "--pool avg or --pool flatten",
        ["PostProcessOptions.Pooling = Average"] = "--pool avg",
        ["PostProcessOptions.Pooling"] = "--pool",
        ["PcaFitOptions.Components"] = "-k K",
        ["PcaFitOptions.VarianceRatio"] = "--variance",
        ["PcaFitOptions.Backend = Managed"] = "--backend managed",
        ["PcaFitOptions.Backend"] = "--backend",
        ["BenchmarkRequest.Precisions"] = "--precision",
        ["BenchmarkRequest.CalibrationImages"] = "--calibrate DIR (or --images)",
        ["ExtractionOptions.Uint8Input = true"] = "--uint8-input on",
        ["ExtractionOptions.TensorsIn"] = "--tensors-in",
        ["Set ExtractionOptions.Resume"] = "Pass --resume",
        ["ExtractionOptions.Resume"] = "--resume",
        ["Set ExtractionOptions.Overwrite"] = "Pass --overwrite",
        ["ExtractionOptions.Overwrite"] = "--overwrite",
        ["OnnxGraph.ListTensors"] = "'featureonnx inspect MODEL --all'",
    };

    /// <summary><paramref name="message"/> with every setting of <see cref="Flags"/> it names replaced by the flag (longest first, first letter's case kept).</summary>
    public static string InFlags(string message)
    {
        foreach (var (setting, flag) in Flags.OrderByDescending(p => p.Key.Length))
            message = Regex.Replace(message, Regex.Escape(setting), m => char.IsUpper(m.Value[0]) ? flag : char.ToLowerInvariant(flag[0]) + flag[1..], RegexOptions.IgnoreCase);
        return message;
    }

    /// <summary>
    /// <paramref name="text"/> parsed by the library; a mistake is reported as <c>--option TEXT: the library's reason</c>
    /// (<c>--option: reason</c> without <paramref name="withValue"/>, for parsers whose reason quotes the part at fault).
    /// </summary>
    public static T ForOption<T>(Option option, string? text, Func<string?, T> parse, bool withValue = true) =>
        ForOption(option.Name, text, parse, withValue);

    /// <summary><see cref="ForOption{T}(Option, string?, Func{string?, T}, bool)"/> for an option named <paramref name="optionName"/>.</summary>
    public static T ForOption<T>(string optionName, string? text, Func<string?, T> parse, bool withValue = true)
    {
        try
        {
            return parse(text);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new ArgumentException($"{optionName}{(withValue ? $" {text}" : "")}: {InFlags(e.Message)}", e);
        }
    }

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
