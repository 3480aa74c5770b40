using System.Diagnostics;
using System.Globalization;
using FeatureOnnx.PostProcessing;
using FeatureOnnx.Sinks;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Pipeline;

/// <summary>A batch's values of one output, rows first: a span over the producer's buffers, read during the call only.</summary>
internal delegate ReadOnlySpan<float> OutputValues(string output);

/// <summary>
/// The consume step that both extraction paths share (prepare, produce, consume): a producer hands it each batch's
/// rows and failures in input order; it applies the post-processing (<see cref="FeaturePostProcessor"/>) to every
/// output, writes rows, index lines and error lines to the <see cref="FeatureOutputFolder"/>, commits the batch,
/// reports progress and makes the common part of the result. Producers never touch the output folder.
/// </summary>
internal sealed class OutputStage : IDisposable
{
    private readonly FeatureOutputFolder _folder;
    private readonly PostProcessOptions _post;
    private readonly IProgress<ExtractionProgress>? _progress;
    private readonly Dictionary<string, FeaturePostProcessor> _processors = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly long _previouslyDone;
    private float[] _buffer = [];
    private long _writeTicks;

    private OutputStage(FeatureOutputFolder folder, InputSelection pending, PostProcessOptions post, IProgress<ExtractionProgress>? progress, long failed)
    {
        (_folder, Pending, _post, _progress, Failed) = (folder, pending, post, progress, failed);
        _previouslyDone = folder.CommittedRows + folder.CommittedErrors;
    }

    /// <summary>The inputs left to do: the selection less what a resumed run had already done.</summary>
    public InputSelection Pending { get; }

    /// <summary>Inputs of <see cref="Pending"/> finished (a row or an error line).</summary>
    public long Done { get; private set; }

    /// <summary>errors.csv lines that are failures (files of walked folders that are not images left out).</summary>
    public long Failed { get; private set; }

    /// <summary>Seconds spent post-processing, writing and committing.</summary>
    public double WriteSeconds => _writeTicks / (double)Stopwatch.Frequency;

    /// <summary>
    /// Opens (or resumes) the output folder for <paramref name="job"/>, takes out of <paramref name="selection"/> what
    /// an earlier run committed, and writes and commits the inputs refused while listing.
    /// </summary>
    public static OutputStage Open(string folder, IReadOnlyDictionary<string, string> job, IReadOnlyList<string> outputs, bool resume,
        InputSelection selection, PostProcessOptions post, IProgress<ExtractionProgress>? progress, List<string> warnings)
    {
        var opened = FeatureOutputFolder.Open(folder, job, outputs, resume);
        try
        {
            var pending = selection.Without(opened.Accounted);
            if (opened.Resumed) warnings.Add($"resumed after {opened.CommittedRows} rows and {opened.CommittedErrors} errors committed by the earlier run.");
            foreach (var problem in pending.Problems) opened.WriteError(problem.Key, problem.Reason);
            opened.Commit();
            // Non-image files are committed with the first commit, so a resumed run counts them among its error lines again.
            return new OutputStage(opened, pending, post, progress, opened.ErrorLines - selection.ListedNonImageFiles);
        }
        catch
        {
            opened.Dispose();
            throw;
        }
    }

    /// <summary>What both paths record of a job in job.json, for a resumed run to be compared with; callers add their own keys.</summary>
    public static Dictionary<string, string> Job(string model, IReadOnlyList<string> outputs, IReadOnlyList<string> inputs, Shard shard, long maxPixels, long maxFileBytes, PostProcessOptions post)
    {
        var job = new Dictionary<string, string>
        {
            ["model"] = model,
            ["outputs"] = string.Join(",", outputs),
            ["inputs"] = InputSelection.Describe(inputs),
            ["shard"] = shard.ToString(),
            ["maxPixels"] = maxPixels.ToString(CultureInfo.InvariantCulture),
            ["postProcess"] = $"pool={post.Pooling} l2={post.L2} pca={post.Pca?.ToString() ?? "none"}",
        };
        // Only when set, so that unfinished runs of versions without the limit still resume at the default.
        if (maxFileBytes != InputFile.DefaultMaxFileBytes) job["maxFileBytes"] = maxFileBytes.ToString(CultureInfo.InvariantCulture);
        return job;
    }

    /// <summary>
    /// Consumes one batch: <paramref name="failed"/> go to errors.csv; the rows of <paramref name="keys"/> (every output
    /// has exactly one row per key, in that order) are post-processed and written; then the batch is committed.
    /// </summary>
    /// <exception cref="InvalidDataException">An output's rows changed shape (named in the message).</exception>
    public void Write(IReadOnlyList<string> keys, IReadOnlyList<InputProblem> failed, IReadOnlyList<string> outputs, Func<string, long[]> shapeOf, OutputValues valuesOf)
    {
        var start = Stopwatch.GetTimestamp();
        foreach (var problem in failed) _folder.WriteError(problem.Key, problem.Reason);
        Failed += failed.Count;
        if (keys.Count > 0)
        {
            foreach (var name in outputs)
            {
                var shape = shapeOf(name);
                if (shape.Length == 0 || shape[0] != keys.Count)
                    throw new InvalidOperationException($"output '{name}' has shape [{string.Join(",", shape)}] for a batch of {keys.Count} inputs.");
                var rowShape = shape[1..];
                if (_post.IsIdentity)
                {
                    _folder.Append(name, rowShape, valuesOf(name));
                    continue;
                }
                if (!_processors.TryGetValue(name, out var processor))
                    _processors[name] = processor = new FeaturePostProcessor(_post, rowShape, $"output '{name}'");
                if (!processor.InputRowShape.SequenceEqual(rowShape))
                    throw new InvalidDataException($"output '{name}' changed shape from rows of [{string.Join(",", processor.InputRowShape)}] to [{string.Join(",", rowShape)}].");
                var needed = keys.Count * processor.OutputRowLength;
                if (_buffer.Length < needed) _buffer = new float[needed];
                processor.Process(valuesOf(name), _buffer.AsSpan(0, needed));
                _folder.Append(name, processor.OutputRowShape, _buffer.AsSpan(0, needed));
            }
            _folder.Index(keys);
        }
        _folder.Commit();
        Done += keys.Count + failed.Count;
        _writeTicks += Stopwatch.GetTimestamp() - start;
        _progress?.Report(new ExtractionProgress(_previouslyDone + Done + Pending.Problems.Count, Failed,
            _previouslyDone + Pending.Items.Count + Pending.Problems.Count, _clock.Elapsed));
    }

    /// <summary>
    /// Ends the run: "interrupted" when <paramref name="stopped"/> left inputs undone (the folder stays resumable),
    /// else "completed" (outputs of known <paramref name="rowShapes"/> that got no row are written with 0 rows when
    /// nothing reshapes them). Returns the status.
    /// </summary>
    public string Finish(bool stopped, IEnumerable<KeyValuePair<string, long[]>>? rowShapes = null)
    {
        _clock.Stop();
        var completed = !(stopped && Done < Pending.Items.Count);
        _folder.Close(completed, _post.IsIdentity ? rowShapes : null);
        return completed ? "completed" : "interrupted";
    }

    /// <summary>The result's fields that both paths fill the same way; each path adds its own with <c>with</c>.</summary>
    public ExtractionResult Summary(string status, string model, string provider, TimeSpan wall, TimeSpan sessionCreation, double decodeBusy, double inferenceBusy) => new()
    {
        Status = status,
        Model = model,
        Provider = provider,
        Layers = _folder.Layers,
        Inputs = _previouslyDone + Pending.Items.Count + Pending.Problems.Count,
        Extracted = _folder.Rows,
        Failed = Failed,
        NotProcessed = Pending.Items.Count - Done,
        SkippedNonImageFiles = Pending.SkippedNonImageFiles,
        Shard = Pending.Shard.ToString(),
        Seconds = new Dictionary<string, double>
        {
            ["wall"] = wall.TotalSeconds,
            ["sessionCreation"] = sessionCreation.TotalSeconds,
            ["batches"] = _clock.Elapsed.TotalSeconds,
            ["decodeBusy"] = decodeBusy,
            ["inferenceBusy"] = inferenceBusy,
            ["writeBusy"] = WriteSeconds,
        },
        ImagesPerSecond = _clock.Elapsed.TotalSeconds > 0 ? Done / _clock.Elapsed.TotalSeconds : 0,
        Resumed = _folder.Resumed,
        PostProcess = PostProcessSummary.Of(_post),
        FinishedUtc = DateTime.UtcNow,
    };

    /// <summary>Writes run.json.</summary>
    public void WriteSummary(ExtractionResult result) => _folder.WriteSummary(result);

    /// <inheritdoc />
    public void Dispose() => _folder.Dispose();
}
