using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FeatureOnnx.Benchmarking;

/// <summary>
/// Writes a benchmark's three files into one folder, each atomically (temporary file, then rename):
/// report.json (the <see cref="BenchmarkReport"/>, camelCase), report.md (tables) and report.svg (throughput chart).
/// </summary>
public static class BenchmarkReportWriter
{
    /// <summary>File names written, in order.</summary>
    public static IReadOnlyList<string> FileNames { get; } = ["report.json", "report.md", "report.svg"];

    // Infinity is a legitimate disagreement (a NaN or a zero reference); JSON has no literal for it, numpy reads "Infinity".
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        TypeInfoResolver = JsonMetadata.Default, // reflection-based JSON is off in a trimmed publish
    };

    private static System.Text.Json.Serialization.Metadata.JsonTypeInfo<BenchmarkReport> ReportInfo =>
        (System.Text.Json.Serialization.Metadata.JsonTypeInfo<BenchmarkReport>)Json.GetTypeInfo(typeof(BenchmarkReport));

    /// <summary>Reads a report.json back.</summary>
    public static BenchmarkReport Read(string path) =>
        JsonSerializer.Deserialize(File.ReadAllText(path), ReportInfo)
        ?? throw new InvalidDataException($"{path}: empty report");

    /// <summary>Writes report.json, report.md and report.svg into <paramref name="directory"/> (created if needed).</summary>
    public static void Write(BenchmarkReport report, string directory)
    {
        Directory.CreateDirectory(directory);
        WriteAtomically(Path.Combine(directory, "report.json"), JsonSerializer.Serialize(report, ReportInfo) + "\n");
        WriteAtomically(Path.Combine(directory, "report.md"), BenchmarkMarkdown.Render(report));
        WriteAtomically(Path.Combine(directory, "report.svg"), ThroughputChart.Render(report));
    }

    private static void WriteAtomically(string path, string text)
    {
        var tmp = path + ".partial";
        File.WriteAllText(tmp, text, new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }
}
