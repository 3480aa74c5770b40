using System.Globalization;
using System.Text.Json;
using FeatureOnnx.Formats;

namespace FeatureOnnx.Sinks;

/// <summary>
/// The output folder of an extraction run, for both extraction paths: the guard (a new or empty folder, or one holding
/// an earlier run, which is replaced or resumed), one OUTPUT.npy per output (row shapes checked, named in errors),
/// index.csv (<c>row,path</c>), errors.csv (<c>path,reason</c>), the commit journal (<see cref="ResumeLog"/>) that makes
/// a killed run resumable, and run.json. Every file is written as <c>NAME.partial</c> and renamed into place when
/// complete; a batch is committed (<see cref="Commit"/>) only once its rows, index lines and error lines are with the
/// operating system, so a run killed at any moment resumes with no row lost or duplicated.
/// </summary>
/// <example>
/// <code>
/// FeatureOutputFolder.Check(dir, overwrite: false, resume: true);
/// using var folder = FeatureOutputFolder.Open(dir, job, ["pooled"], resume: true);
/// folder.Append("pooled", [512], rows);   // one call per output
/// folder.Index(keys);                    // then the keys of those rows
/// folder.Commit();
/// folder.Close(completed: true);
/// folder.WriteSummary(result);
/// </code>
/// </example>
public sealed class FeatureOutputFolder : IDisposable
{
    /// <summary>The summary a finished (completed, interrupted or failed) run writes last.</summary>
    public const string SummaryFileName = "run.json";

    /// <summary>One line per row of every output: <c>row,path</c>.</summary>
    public const string IndexFileName = "index.csv";

    /// <summary>One line per input that gave no row: <c>path,reason</c>.</summary>
    public const string ErrorsFileName = "errors.csv";

    private readonly Dictionary<string, NpyWriter> _writers = new(StringComparer.Ordinal);
    private readonly ResumeLog _journal;
    private readonly CsvLog _index;
    private readonly CsvLog _errors;

    private FeatureOutputFolder(string folder, ResumeLog journal, CsvLog index, CsvLog errors, long rows, long errorLines, HashSet<string> accounted)
    {
        Folder = folder;
        _journal = journal;
        _index = index;
        _errors = errors;
        (Rows, CommittedRows, CommittedErrors, Accounted) = (rows, rows, errorLines, accounted);
    }

    /// <summary>The folder.</summary>
    public string Folder { get; }

    /// <summary>Rows in every output and index.csv so far.</summary>
    public long Rows { get; private set; }

    /// <summary>Lines in errors.csv so far.</summary>
    public long ErrorLines => _errors.Lines;

    /// <summary>Rows kept from the earlier run this one continues (0 for a new run).</summary>
    public long CommittedRows { get; }

    /// <summary>errors.csv lines kept from the earlier run this one continues (0 for a new run).</summary>
    public long CommittedErrors { get; }

    /// <summary>True when an earlier, unfinished run was continued with at least one committed row or error.</summary>
    public bool Resumed => CommittedRows + CommittedErrors > 0;

    /// <summary>Keys of the inputs the earlier run already accounted for (in index.csv or errors.csv); empty for a new run.</summary>
    public IReadOnlySet<string> Accounted { get; }

    /// <summary>Output name -> shape of its .npy file (rows first), for the outputs written so far.</summary>
    public IReadOnlyDictionary<string, long[]> Layers => _writers.ToDictionary(p => p.Key, p => (long[])[p.Value.Rows, .. p.Value.RowShape]);

    /// <summary>Whether <paramref name="folder"/> holds a run, finished or not.</summary>
    public static bool HoldsRun(string folder) =>
        File.Exists(Path.Combine(folder, SummaryFileName)) || ResumeLog.HasUnfinishedRun(folder) || File.Exists(Path.Combine(folder, ResumeLog.ProgressFileName));

    /// <summary>Refuses a folder that exists, is not empty and holds no run.</summary>
    /// <exception cref="OutputFolderException">The folder holds other files; the message names a few.</exception>
    public static void RefuseForeign(string folder)
    {
        if (!Directory.Exists(folder) || HoldsRun(folder)) return;
        var entries = Directory.EnumerateFileSystemEntries(folder).Take(4).Select(Path.GetFileName).ToList();
        if (entries.Count == 0) return;
        var named = string.Join(", ", entries.Take(3)) + (entries.Count > 3 ? ", ..." : "");
        throw new OutputFolderException(folder,
            $"{folder} is not empty ({named}) and holds no earlier run (no {SummaryFileName}): a run there would replace {IndexFileName}, {ErrorsFileName} and " +
            $"{SummaryFileName} and delete every *.npy. Choose a new or empty folder.");
    }

    /// <summary>
    /// Checks, before any work is done, that a run may write into <paramref name="folder"/>. Returns true when
    /// <paramref name="resume"/> finds a run there that already completed (read its <see cref="ReadSummary{T}"/>; there is nothing to do).
    /// </summary>
    /// <exception cref="IOException">The folder holds a run (finished or not) and neither replacing nor resuming it was asked for.</exception>
    /// <exception cref="OutputFolderException">The folder holds other files and replacing was not asked for.</exception>
    public static bool Check(string folder, bool overwrite, bool resume)
    {
        var unfinished = ResumeLog.HasUnfinishedRun(folder);
        var summary = Path.Combine(folder, SummaryFileName);
        if (!overwrite && !resume)
        {
            if (unfinished)
                throw new IOException($"{folder} holds an unfinished run ({ResumeLog.JobFileName}). Set ExtractionOptions.Resume to continue it, or ExtractionOptions.Overwrite to start again.");
            if (File.Exists(summary))
                throw new IOException($"{folder} already holds a run ({SummaryFileName}). Choose another folder or set ExtractionOptions.Overwrite to replace it.");
        }
        if (!overwrite) RefuseForeign(folder);
        if (!resume || unfinished || !File.Exists(summary)) return false;
        using var document = JsonDocument.Parse(File.ReadAllText(summary));
        return document.RootElement.TryGetProperty("status", out var status) && status.GetString() == "completed";
    }

    /// <summary>Reads the folder's run.json (written by <see cref="WriteSummary{T}"/>).</summary>
    public static T? ReadSummary<T>(string folder) => RunSummary.Read<T>(Path.Combine(folder, SummaryFileName));

    /// <summary>
    /// The model and output shapes of the finished run in <paramref name="folder"/>, for those who read its outputs
    /// (merge, retrieval); <paramref name="before"/> ends the refusal of an unfinished run ("before merging").
    /// </summary>
    /// <exception cref="FileNotFoundException">No run.json: not an output folder.</exception>
    /// <exception cref="InvalidDataException">The run did not complete, or run.json lists no outputs.</exception>
    public static FinishedRun ReadFinished(string folder, string before)
    {
        var path = Path.Combine(folder, SummaryFileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{folder}: no {SummaryFileName}; is it an extract output folder?", path);
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var root = document.RootElement;
        var status = root.TryGetProperty("status", out var s) ? s.GetString() : null;
        if (status != "completed")
            throw new InvalidDataException($"{folder}: run status is '{status}'; finish it by resuming that extraction (ExtractionOptions.Resume) {before}.");
        if (!root.TryGetProperty("layers", out var l)) throw new InvalidDataException($"{path}: no \"layers\"; it is not a run.json FeatureOnnx wrote.");
        var layers = l.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => v.GetInt64()).ToArray());
        return new FinishedRun(root.TryGetProperty("model", out var m) ? m.GetString() ?? "" : "", layers);
    }

    /// <summary>
    /// Opens <paramref name="folder"/> (created if needed) for the run <paramref name="job"/> describes. With
    /// <paramref name="resume"/> and an unfinished run there, continues it: the earlier run must have been asked to do the
    /// same job, and every file is cut back to its last commit. Otherwise starts afresh: the files of any earlier run
    /// (outputs, logs, journal, summary) are deleted first, so none is left stale.
    /// </summary>
    /// <param name="folder">The output folder, checked with <see cref="Check"/>.</param>
    /// <param name="job">What the run was asked to do (compared on resume).</param>
    /// <param name="outputs">The outputs the run writes (reopened on resume).</param>
    /// <param name="resume">Continue an unfinished run when there is one.</param>
    /// <exception cref="ArgumentException">The unfinished run was started with other settings; the message names them.</exception>
    /// <exception cref="InvalidDataException">A file of the unfinished run holds fewer records than its journal committed.</exception>
    public static FeatureOutputFolder Open(string folder, IReadOnlyDictionary<string, string> job, IReadOnlyList<string> outputs, bool resume)
    {
        Directory.CreateDirectory(folder);
        if (resume && ResumeLog.HasUnfinishedRun(folder))
        {
            var journal = ResumeLog.Continue(folder, job, out var rows, out var errorLines);
            if (rows + errorLines > 0) return Continue(folder, journal, outputs, rows, errorLines);
            journal.Dispose(); // killed before its first commit: nothing to keep, start the same job afresh
        }
        foreach (var pattern in new[] { "*.npy", "*.partial", IndexFileName, ErrorsFileName, SummaryFileName, ResumeLog.ProgressFileName })
            foreach (var stale in Directory.EnumerateFiles(folder, pattern))
                File.Delete(stale);
        var started = ResumeLog.Start(folder, job);
        CsvLog? index = null;
        try
        {
            index = new CsvLog(Path.Combine(folder, IndexFileName), "row", "path");
            var errors = new CsvLog(Path.Combine(folder, ErrorsFileName), "path", "reason");
            return new FeatureOutputFolder(folder, started, index, errors, 0, 0, []);
        }
        catch
        {
            index?.Dispose();
            started.Dispose();
            throw;
        }
    }

    private static FeatureOutputFolder Continue(string folder, ResumeLog journal, IReadOnlyList<string> outputs, long rows, long errorLines)
    {
        var opened = new List<IDisposable> { journal };
        try
        {
            var index = CsvLog.Resume(Path.Combine(folder, IndexFileName), rows, 1, out var doneRows);
            opened.Add(index);
            var errors = CsvLog.Resume(Path.Combine(folder, ErrorsFileName), errorLines, 0, out var doneErrors);
            opened.Add(errors);
            var accounted = new HashSet<string>(doneRows, StringComparer.Ordinal);
            accounted.UnionWith(doneErrors);
            var result = new FeatureOutputFolder(folder, journal, index, errors, rows, errorLines, accounted);
            opened.Add(result);
            if (rows > 0)
                foreach (var name in outputs)
                    result._writers[name] = NpyWriter.Resume(OutputPath(folder, name), rows);
            return result;
        }
        catch
        {
            foreach (var d in Enumerable.Reverse(opened)) d.Dispose();
            throw;
        }
    }

    private static string OutputPath(string folder, string output) => Path.Combine(folder, output + ".npy");

    /// <summary>Lists an input that gave no row in errors.csv.</summary>
    public void WriteError(string key, string reason) => _errors.Write(key, reason);

    /// <summary>
    /// Appends whole rows of shape <paramref name="rowShape"/> to <paramref name="output"/>'s .npy (created on its first
    /// rows). Every output of a batch gets its rows before <see cref="Index"/> names them.
    /// </summary>
    /// <exception cref="InvalidDataException">The output's file holds rows of another shape (e.g. a resumed run with another model); the message names the output.</exception>
    public void Append(string output, IReadOnlyList<long> rowShape, ReadOnlySpan<float> rows)
    {
        if (!_writers.TryGetValue(output, out var writer))
            _writers[output] = writer = new NpyWriter(OutputPath(Folder, output), rowShape);
        if (!writer.RowShape.SequenceEqual(rowShape))
            throw new InvalidDataException($"output '{output}': {writer.Path} holds rows of [{string.Join(",", writer.RowShape)}], but this batch has rows of [{string.Join(",", rowShape)}]; " +
                                           "resume with the same model and options or set ExtractionOptions.Overwrite.");
        writer.Append(rows);
    }

    /// <summary>Writes the index.csv lines of the rows just appended, in row order.</summary>
    public void Index(IReadOnlyList<string> keys)
    {
        foreach (var key in keys) _index.Write((Rows++).ToString(CultureInfo.InvariantCulture), key);
    }

    /// <summary>
    /// Commits what was written since the last commit: rows, index lines and error lines go to the operating system,
    /// then the journal records them. A run killed after this keeps them; one killed before loses only this batch.
    /// </summary>
    /// <exception cref="InvalidOperationException">An output holds another number of rows than index.csv (a producer left one out); the message names it.</exception>
    public void Commit()
    {
        foreach (var (name, writer) in _writers)
            if (writer.Rows != Rows)
                throw new InvalidOperationException($"output '{name}' holds {writer.Rows} rows but {IndexFileName} {Rows}: every row needs every output.");
        foreach (var w in _writers.Values) w.Flush();
        _index.Flush(); // headers included: both must be on disk before the first commit
        _errors.Flush();
        _journal.Commit(Rows, _errors.Lines);
    }

    /// <summary>
    /// Completes every file (renamed into place, synced). With <paramref name="completed"/> the journal is deleted (the
    /// run is over) and an output of known row shape that got no row at all is written with 0 rows, so consumers need
    /// no special case; without (an interrupted run) the journal stays, so the run can be resumed.
    /// </summary>
    public void Close(bool completed, IEnumerable<KeyValuePair<string, long[]>>? emptyShapes = null)
    {
        Commit();
        if (completed)
            foreach (var (name, shape) in emptyShapes ?? [])
                if (!_writers.ContainsKey(name))
                    _writers[name] = new NpyWriter(OutputPath(Folder, name), shape);
        foreach (var w in _writers.Values) w.Complete();
        _index.Complete();
        _errors.Complete();
        if (!completed) return;
        _journal.Dispose();
        ResumeLog.Finish(Folder);
    }

    /// <summary>Writes run.json atomically; <typeparamref name="T"/> must be listed in <see cref="JsonMetadata"/>.</summary>
    public void WriteSummary<T>(T summary) => RunSummary.Write(Path.Combine(Folder, SummaryFileName), summary);

    /// <summary>Closes every file; one not completed by <see cref="Close"/> stays as <c>.partial</c>, for a resume.</summary>
    public void Dispose()
    {
        foreach (var w in _writers.Values) w.Dispose();
        _index.Dispose();
        _errors.Dispose();
        _journal.Dispose();
    }
}

/// <summary>The output folder holds files that are not a run's; overwriting them must be asked for explicitly.</summary>
/// <summary>A finished run as its run.json records it (<see cref="FeatureOutputFolder.ReadFinished"/>).</summary>
/// <param name="Model">The model's name.</param>
/// <param name="Layers">Each output's shape, rows first, in the order run.json lists them.</param>
public sealed record FinishedRun(string Model, IReadOnlyDictionary<string, long[]> Layers);

public sealed class OutputFolderException(string folder, string message) : IOException(message)
{
    /// <summary>The folder refused.</summary>
    public string Folder { get; } = folder;
}
