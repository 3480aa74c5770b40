using System.CommandLine;
using System.Globalization;
using FeatureOnnx.Benchmarking;
using FeatureOnnx.Formats;
using FeatureOnnx.Sinks;

namespace FeatureOnnx.Cli;

/// <summary>
/// <c>featureonnx retrieval OUT [--against REF]</c>: leave-one-out precision at 1 of extracted features against labels,
/// and (with a reference run) how the two runs' neighbours agree: the way to choose a precision or provider on one's
/// own labelled photos.
/// </summary>
internal static class RetrievalCommand
{
    /// <summary>Exit code when the candidate's precision at 1 fell by more than --max-drop.</summary>
    public const int DropExceeded = 4;

    public static Command Create()
    {
        var folder = new Argument<string>("folder") { Description = "Output folder of a finished extract run (index.csv and OUTPUT.npy)." };
        var against = new Option<string?>("--against")
        {
            Description = "Output folder of a reference run over the same images (e.g. --precision fp32 where FOLDER is int8): compare precision at 1, " +
                          "the overlap of the k nearest neighbours row by row, and per-row cosine. Rows are matched by input path.",
        };
        var output = new Option<string?>("--output") { Description = "Which output to read when the run wrote several (e.g. pooled). Default: the only one." };
        var labels = new Option<string?>("--labels")
        {
            Description = "CSV of path,label (with a header line) naming each input's label. Default: the name of the folder each image is in " +
                          "(photos/cat/1.jpg has label 'cat').",
        };
        var k = new Option<int>("--neighbours", "-k") { Description = "Nearest neighbours compared per row with --against.", DefaultValueFactory = _ => 10 };
        var maxDrop = new Option<double?>("--max-drop")
        {
            Description = $"With --against: exit with code {DropExceeded} when precision at 1 is lower than the reference's by more than this (e.g. 0.01).",
        };
        var command = new Command("retrieval",
            "Leave-one-out retrieval on extracted features: each image whose label another image carries is a query, and it scores when its nearest other " +
            "image (cosine similarity, exact search) has its label. Prints precision at 1; with --against, the reference's, the change, and how the " +
            "two runs' nearest neighbours and rows agree. Exact search costs rows² x width multiply-adds: meant for evaluation sets (thousands of images).")
        {
            folder, against, output, labels, k, maxDrop,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(CliErrors.Guard(() =>
        {
            // Checked here rather than in a validator: validators do not see DefaultValueFactory values.
            if (parse.GetValue(k) < 1) throw new ArgumentException($"--neighbours {parse.GetValue(k)}: must be at least 1.");
            if (parse.GetValue(maxDrop) is { } d && (d < 0 || !double.IsFinite(d))) throw new ArgumentException($"--max-drop {d}: must be a number >= 0.");
            if (parse.GetValue(maxDrop) is not null && parse.GetValue(against) is null) throw new ArgumentException("--max-drop needs --against REF: the drop is measured against a reference run.");
            var candidate = ExtractedFeatures.Load(parse.GetValue(folder)!, parse.GetValue(output));
            var labelsFile = parse.GetValue(labels);
            var labelOf = labelsFile is null ? null : ReadLabels(labelsFile);
            var referenceFolder = parse.GetValue(against);
            if (referenceFolder is null)
            {
                var rowLabels = Labels(candidate.Keys, labelOf, labelsFile);
                RequireSeveral(candidate.Rows, candidate.Folder);
                var score = RetrievalAgreement.PrecisionAtOne(RetrievalAgreement.Neighbours(candidate.Values, candidate.Rows, 1, cancellation), rowLabels);
                Console.WriteLine($"{candidate.Folder}: {Describe(candidate)}, {Describe(score, labelsFile)}");
                Console.WriteLine($"precision@1 (leave-one-out): {Format(score.PrecisionAtOne)}");
                return CliErrors.Ok;
            }

            var reference = ExtractedFeatures.Load(referenceFolder, parse.GetValue(output) ?? candidate.Output);
            if (reference.Width != candidate.Width)
                throw new InvalidDataException($"{reference.Folder}/{reference.Output}.npy: rows of [{string.Join(",", reference.RowShape)}] against [{string.Join(",", candidate.RowShape)}] in {candidate.Folder}; compare runs of the same model and output.");
            var (keys, a, b) = Shared(candidate, reference);
            RequireSeveral(keys.Count, $"{candidate.Folder} and {reference.Folder} together");
            var shared = Labels(keys, labelOf, labelsFile);
            var r = RetrievalAgreement.Compare(a, b, keys.Count, shared, parse.GetValue(k), cancellation);
            Console.WriteLine($"{candidate.Folder} against {reference.Folder}: {keys.Count} images in both" +
                              (keys.Count < candidate.Rows || keys.Count < reference.Rows ? $" ({candidate.Rows - keys.Count} only in {candidate.Folder}, {reference.Rows - keys.Count} only in {reference.Folder}: left out)" : "") +
                              $"; {candidate.Output} [{string.Join(",", candidate.RowShape)}], {Describe(r.Candidate, labelsFile)}");
            Console.WriteLine($"precision@1 (leave-one-out): {Format(r.Candidate.PrecisionAtOne)} against {Format(r.Reference.PrecisionAtOne)} ({r.PrecisionAtOneChange:+0.0000;-0.0000;0.0000})");
            Console.WriteLine($"{r.K} nearest neighbours: mean overlap {r.MeanOverlap:0.0000}, min {r.MinOverlap:0.00}; row cosine min {r.MinCosine:0.000000}, median {r.MedianCosine:0.000000}");
            if (parse.GetValue(maxDrop) is { } limit && -r.PrecisionAtOneChange > limit)
            {
                Console.Error.WriteLine($"precision@1 fell by {-r.PrecisionAtOneChange:0.0000}, more than --max-drop {limit.ToString(CultureInfo.InvariantCulture)}.");
                return DropExceeded;
            }
            return CliErrors.Ok;
        })));
        return command;
    }

    private static string Format(double p) => double.IsNaN(p) ? "n/a (no label is carried by two images)" : p.ToString("0.0000", CultureInfo.InvariantCulture);

    private static string Describe(ExtractedFeatures f) => $"{f.Rows} rows of {f.Output} [{string.Join(",", f.RowShape)}]";

    private static string Describe(RetrievalScore s, string? labelsFile) =>
        $"{s.Labels} labels (from {labelsFile ?? "parent folder names"}), {s.Queries} queries" +
        (s.Queries < s.Rows ? $" ({s.Rows - s.Queries} images carry a label no other image has: not queries)" : "");

    private static void RequireSeveral(int rows, string where)
    {
        if (rows < 2) throw new InvalidDataException($"{where}: {rows} image(s); retrieval needs at least two.");
    }

    /// <summary>The rows both runs hold, in the candidate's order, with the reference's rows reordered to match.</summary>
    private static (List<string> Keys, float[] Candidate, float[] Reference) Shared(ExtractedFeatures candidate, ExtractedFeatures reference)
    {
        var referenceRow = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < reference.Rows; i++) referenceRow.TryAdd(reference.Keys[i], i);
        var keys = new List<string>();
        var width = candidate.Width;
        var a = new List<float>();
        var b = new List<float>();
        for (var i = 0; i < candidate.Rows; i++)
        {
            if (!referenceRow.TryGetValue(candidate.Keys[i], out var j)) continue;
            keys.Add(candidate.Keys[i]);
            a.AddRange(candidate.Values.AsSpan(i * width, width));
            b.AddRange(reference.Values.AsSpan(j * width, width));
        }
        return (keys, a.ToArray(), b.ToArray());
    }

    private static Dictionary<string, string> ReadLabels(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such labels file.", path);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var line = 1;
        foreach (var record in CsvLog.ReadWritten(path))
        {
            line++;
            if (record.Count == 1 && record[0].Length == 0) continue;
            if (record.Count < 2) throw new InvalidDataException($"{path}: line {line} has no label; write path,label.");
            result[record[0]] = record[1];
        }
        return result;
    }

    private static List<string> Labels(IReadOnlyList<string> keys, Dictionary<string, string>? labelOf, string? labelsFile)
    {
        if (labelOf is null)
        {
            var byFolder = keys.Select(k => Path.GetFileName(Path.GetDirectoryName(k)) ?? "").ToList();
            if (byFolder.Distinct(StringComparer.Ordinal).Count() == 1)
                Console.Error.WriteLine($"warning: every image is in a folder named '{byFolder[0]}', so all carry one label and precision at 1 says nothing; " +
                                        "put each class in a folder of its own or pass --labels.");
            return byFolder;
        }
        var missing = keys.Where(k => !labelOf.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{labelsFile}: no label for {missing.Count} of {keys.Count} images, e.g. '{missing[0]}' (paths must be written as index.csv writes them).");
        return keys.Select(k => labelOf[k]).ToList();
    }
}
