using System.Globalization;
using System.Text.Json;
using FeatureOnnx.Formats;
using FeatureOnnx.Sinks;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Pipeline;

/// <summary>What <see cref="ShardMerge.Merge"/> did; written to the merged folder's run.json.</summary>
public sealed record MergeResult
{
    /// <summary>Always "completed".</summary>
    public string Status { get; init; } = "completed";
    /// <summary>Model name shared by every source.</summary>
    public required string Model { get; init; }
    /// <summary>Output name -> merged shape.</summary>
    public required IReadOnlyDictionary<string, long[]> Layers { get; init; }
    /// <summary>Rows written.</summary>
    public long Extracted { get; init; }
    /// <summary>Lines in the merged errors.csv, except files in folders that are not images.</summary>
    public long Failed { get; init; }
    /// <summary>The folders merged, in the order given.</summary>
    public required IReadOnlyList<string> Sources { get; init; }
    /// <summary>How rows are ordered.</summary>
    public string RowOrder { get; init; } = "by path (ordinal), the order of an unsharded run over one folder";
}

/// <summary>
/// Combines the output folders of shards (<c>extract --shard I/N</c>) into one: rows of every layer sorted by path
/// (ordinal), so that merging the shards of a folder gives exactly the files of one unsharded run; errors likewise.
/// Refuses folders from different models or layers, unfinished runs, and inputs present in two folders.
/// </summary>
public static class ShardMerge
{
    /// <summary>Merges <paramref name="sources"/> into <paramref name="outDir"/> (which must not hold a run).</summary>
    public static MergeResult Merge(IReadOnlyList<string> sources, string outDir)
    {
        if (sources.Count == 0) throw new ArgumentException("merge: name at least one output folder.");
        if (File.Exists(Path.Combine(outDir, "run.json")))
            throw new IOException($"{outDir} already holds a run (run.json); choose another folder.");
        var runs = sources.Select(ReadRun).ToList();
        var model = runs[0].Model;
        var layers = runs[0].Layers.Keys.Order(StringComparer.Ordinal).ToList();
        foreach (var (run, dir) in runs.Zip(sources))
        {
            if (run.Model != model) throw new InvalidDataException($"{dir}: model '{run.Model}' differs from '{model}' in {sources[0]}.");
            if (!run.Layers.Keys.Order(StringComparer.Ordinal).SequenceEqual(layers))
                throw new InvalidDataException($"{dir}: layers {string.Join(",", run.Layers.Keys)} differ from {string.Join(",", layers)} in {sources[0]}.");
        }

        // (key, source, row) of every row, sorted by key.
        var rows = new List<(string Key, int Source, long Row)>();
        for (var s = 0; s < sources.Count; s++)
            foreach (var (row, key) in ReadCsv(Path.Combine(sources[s], "index.csv")).Select(r => (long.Parse(r[0], CultureInfo.InvariantCulture), r[1])))
                rows.Add((key, s, row));
        rows.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        for (var i = 1; i < rows.Count; i++)
            if (rows[i].Key == rows[i - 1].Key)
                throw new InvalidDataException($"'{rows[i].Key}' is in both {sources[rows[i - 1].Source]} and {sources[rows[i].Source]}: overlapping shards.");

        Directory.CreateDirectory(outDir);
        var shapes = new Dictionary<string, long[]>();
        foreach (var layer in layers)
        {
            var inputs = sources.Select(d => File.OpenRead(Path.Combine(d, layer + ".npy"))).ToList();
            try
            {
                var infos = inputs.Select((f, i) => NpyFormat.ReadHeader(f, Path.Combine(sources[i], layer + ".npy"))).ToList();
                var rowShape = infos[0].Shape[1..];
                for (var i = 0; i < infos.Count; i++)
                    if (infos[i].DType != "<f4" || !infos[i].Shape[1..].SequenceEqual(rowShape))
                        throw new InvalidDataException($"{sources[i]}/{layer}.npy: shape [{string.Join(",", infos[i].Shape)}] does not match [N,{string.Join(",", rowShape)}].");
                using var writer = new NpyWriter(Path.Combine(outDir, layer + ".npy"), rowShape);
                var row = new float[writer.RowLength];
                var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(row.AsSpan());
                foreach (var (_, source, index) in rows)
                {
                    inputs[source].Position = infos[source].DataOffset + index * bytes.Length;
                    inputs[source].ReadExactly(bytes);
                    writer.Append(row);
                }
                writer.Complete();
                shapes[layer] = [writer.Rows, .. rowShape];
            }
            finally
            {
                foreach (var f in inputs) f.Dispose();
            }
        }
        using (var index = new CsvLog(Path.Combine(outDir, "index.csv"), "row", "path"))
        {
            for (var i = 0; i < rows.Count; i++) index.Write(i.ToString(CultureInfo.InvariantCulture), rows[i].Key);
            index.Complete();
        }
        var errorLines = sources.SelectMany(d => ReadCsv(Path.Combine(d, "errors.csv"))).OrderBy(r => r[0], StringComparer.Ordinal).ToList();
        using (var errors = new CsvLog(Path.Combine(outDir, "errors.csv"), "path", "reason"))
        {
            foreach (var e in errorLines) errors.Write(e[0], e[1]);
            errors.Complete();
        }
        var result = new MergeResult { Model = model, Layers = shapes, Extracted = rows.Count, Failed = errorLines.Count(e => e[1] != FolderSource.NotAnImage), Sources = sources.Select(Path.GetFullPath).ToList() };
        RunSummary.Write(Path.Combine(outDir, "run.json"), result);
        return result;
    }

    private sealed record RunInfo(string Model, Dictionary<string, long[]> Layers);

    private static RunInfo ReadRun(string dir)
    {
        var path = Path.Combine(dir, "run.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir}: no run.json; is it an extract output folder?", path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var status = doc.RootElement.GetProperty("status").GetString();
        if (status != "completed")
            throw new InvalidDataException($"{dir}: run status is '{status}'; finish it with 'extract ... --resume' before merging.");
        var layers = doc.RootElement.GetProperty("layers").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => v.GetInt64()).ToArray());
        return new RunInfo(doc.RootElement.GetProperty("model").GetString() ?? "", layers);
    }

    private static IEnumerable<List<string>> ReadCsv(string path)
    {
        using var log = CsvLog.Read(path);
        foreach (var record in log) yield return record;
    }
}
