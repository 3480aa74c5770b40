using FeatureOnnx.Formats;
using System.Text.RegularExpressions;

namespace FeatureOnnx.Cli;

/// <summary>
/// The account of failed inputs printed at the end of a run: how many per kind of reason, the first few paths of
/// each, and where errors.csv (which lists every one) is. Streams errors.csv, so millions of lines cost no memory.
/// </summary>
internal static partial class FailureSummary
{
    private const int PathsPerReason = 3;
    private const int ReasonsShown = 8;

    /// <summary>Lines to print for the errors.csv at <paramref name="errorsCsv"/>; empty when it lists nothing (or is not there).</summary>
    public static IReadOnlyList<string> Lines(string errorsCsv)
    {
        if (!File.Exists(errorsCsv)) return [];
        var groups = new Dictionary<string, (long Count, List<string> Paths)>(StringComparer.Ordinal);
        long total = 0, notImages = 0;
        var notImagePaths = new List<string>();
        using (var records = CsvLog.Read(errorsCsv))
            foreach (var record in records)
            {
                if (record.Count < 2) continue;
                // Files of walked folders that are not images are listed, not failed (the run does not count them).
                if (record[1] == Sources.FolderSource.NotAnImage)
                {
                    if (notImagePaths.Count < PathsPerReason) notImagePaths.Add(record[0]);
                    notImages++;
                    continue;
                }
                total++;
                var reason = ReasonClass(record[1]);
                var group = groups.TryGetValue(reason, out var g) ? g : (0, new List<string>());
                if (group.Paths.Count < PathsPerReason) group.Paths.Add(record[0]);
                groups[reason] = (group.Count + 1, group.Paths);
            }
        var lines = new List<string>();
        if (total > 0) lines.AddRange(FailureLines(groups, total, errorsCsv));
        if (notImages > 0)
            lines.Add($"{notImages} file{(notImages == 1 ? "" : "s")} in the input folders {(notImages == 1 ? "is" : "are")} not an image, listed in {errorsCsv}: " +
                      $"{string.Join(", ", notImagePaths)}{(notImages > notImagePaths.Count ? ", ..." : "")}");
        return lines;
    }

    private static List<string> FailureLines(Dictionary<string, (long Count, List<string> Paths)> groups, long total, string errorsCsv)
    {
        var lines = new List<string> { $"{total} input{(total == 1 ? "" : "s")} failed (each one with its full reason in {errorsCsv}):" };
        var ordered = groups.OrderByDescending(p => p.Value.Count).ThenBy(p => p.Key, StringComparer.Ordinal).ToList();
        var width = ordered.Max(p => p.Value.Count).ToString(System.Globalization.CultureInfo.InvariantCulture).Length;
        foreach (var (reason, (count, paths)) in ordered.Take(ReasonsShown))
            lines.Add($"  {count.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(width)} {reason}: {string.Join(", ", paths)}{(count > paths.Count ? ", ..." : "")}");
        if (ordered.Count > ReasonsShown)
            lines.Add($"  ... and {ordered.Skip(ReasonsShown).Sum(p => p.Value.Count)} more under {ordered.Count - ReasonsShown} other reasons");
        return lines;
    }

    /// <summary>
    /// The kind of a reason, for grouping: its text without details in parentheses, cut before the first ':', ','
    /// or ';', numbers replaced by N ("truncated JPEG: premature end of data segment" -> "truncated JPEG").
    /// </summary>
    public static string ReasonClass(string reason)
    {
        if (reason.Contains("megapixels, above the limit", StringComparison.Ordinal)) return "too many pixels";
        var text = reason;
        for (var stripped = Parenthesised().Replace(text, ""); stripped != text; stripped = Parenthesised().Replace(text, ""))
            text = stripped;
        var cut = text.IndexOfAny([':', ',', ';']);
        if (cut >= 0) text = text[..cut];
        text = Number().Replace(text, "N").Trim();
        return text.Length > 0 ? text : reason;
    }

    [GeneratedRegex(@"\s*\([^()]*\)")]
    private static partial Regex Parenthesised();

    [GeneratedRegex(@"\d+(\.\d+)?")]
    private static partial Regex Number();
}
