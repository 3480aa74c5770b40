using System.Globalization;
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
/// Refuses folders from different models or layers, unfinished runs, and inputs present in two folders. The merged
/// folder is written by <see cref="FeatureOutputFolder"/>, as extract's are.
/// </summary>
public static class ShardMerge
{
    // Rows copied and committed at a time: a row of a spatial map can be 100 KB, and the buffers hold this many per layer.
    private const int RowsPerCommit = 64;

    /// <summary>Merges <paramref name="sources"/> into <paramref name="outDir"/> (which must not hold a run).</summary>
    public static MergeResult Merge(IReadOnlyList<string> sources, string outDir)
    {
        if (sources.Count == 0) throw new ArgumentException("merge: name at least one output folder.");
        if (File.Exists(Path.Combine(outDir, FeatureOutputFolder.SummaryFileName)))
            throw new IOException($"{outDir} already holds a run ({FeatureOutputFolder.SummaryFileName}); choose another folder.");
        var runs = sources.Select(d => FeatureOutputFolder.ReadFinished(d, before: "before merging")).ToList();
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
            foreach (var (row, key) in ReadCsv(Path.Combine(sources[s], FeatureOutputFolder.IndexFileName)).Select(r => (long.Parse(r[0], CultureInfo.InvariantCulture), r[1])))
                rows.Add((key, s, row));
        rows.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        for (var i = 1; i < rows.Count; i++)
            if (rows[i].Key == rows[i - 1].Key)
                throw new InvalidDataException($"'{rows[i].Key}' is in both {sources[rows[i - 1].Source]} and {sources[rows[i].Source]}: overlapping shards.");

        var errorLines = sources.SelectMany(d => ReadCsv(Path.Combine(d, FeatureOutputFolder.ErrorsFileName))).OrderBy(r => r[0], StringComparer.Ordinal).ToList();
        // Every layer file of every source, open at once: rows are copied row by row, all layers of a row together.
        var files = layers.Select(layer => sources.Select(d => File.OpenRead(Path.Combine(d, layer + ".npy"))).ToList()).ToList();
        try
        {
            var infos = files.Select((perSource, l) => perSource.Select((f, i) => NpyFormat.ReadHeader(f, Path.Combine(sources[i], layers[l] + ".npy"))).ToList()).ToList();
            var rowShapes = infos.Select(perSource => perSource[0].Shape[1..]).ToList();
            for (var l = 0; l < layers.Count; l++)
                for (var i = 0; i < sources.Count; i++)
                    if (infos[l][i].DType != "<f4" || !infos[l][i].Shape[1..].SequenceEqual(rowShapes[l]))
                        throw new InvalidDataException($"{sources[i]}/{layers[l]}.npy: shape [{string.Join(",", infos[l][i].Shape)}] does not match [N,{string.Join(",", rowShapes[l])}].");
            var job = new Dictionary<string, string> { ["merge"] = string.Join("\n", sources.Select(Path.GetFullPath)), ["outputs"] = string.Join(",", layers) };
            using var folder = FeatureOutputFolder.Open(outDir, job, layers, resume: false);
            var rowFloats = rowShapes.Select(shape => (int)shape.Aggregate(1L, (a, b) => a * b)).ToList();
            var buffers = rowFloats.Select(n => new float[RowsPerCommit * n]).ToList();
            foreach (var chunk in rows.Chunk(RowsPerCommit))
            {
                for (var l = 0; l < layers.Count; l++)
                {
                    var rowBytes = rowFloats[l] * sizeof(float);
                    var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffers[l].AsSpan(0, chunk.Length * rowFloats[l]));
                    for (var k = 0; k < chunk.Length; k++)
                    {
                        var (_, source, index) = chunk[k];
                        files[l][source].Position = infos[l][source].DataOffset + index * rowBytes;
                        files[l][source].ReadExactly(bytes.Slice(k * rowBytes, rowBytes));
                    }
                    folder.Append(layers[l], rowShapes[l], buffers[l].AsSpan(0, chunk.Length * rowFloats[l]));
                }
                folder.Index(chunk.Select(r => r.Key).ToList());
                folder.Commit();
            }
            foreach (var e in errorLines) folder.WriteError(e[0], e[1]);
            folder.Close(completed: true, layers.Select((layer, l) => KeyValuePair.Create(layer, rowShapes[l])));
            var result = new MergeResult { Model = model, Layers = folder.Layers, Extracted = rows.Count, Failed = errorLines.Count(e => e[1] != FolderSource.NotAnImage), Sources = sources.Select(Path.GetFullPath).ToList() };
            folder.WriteSummary(result);
            return result;
        }
        finally
        {
            foreach (var f in files.SelectMany(f => f)) f.Dispose();
        }
    }

    private static IEnumerable<List<string>> ReadCsv(string path)
    {
        using var log = CsvLog.Read(path);
        foreach (var record in log) yield return record;
    }
}
