using System.Collections.Concurrent;
using System.Diagnostics;
using FeatureOnnx.Models;
using FeatureOnnx.PostProcessing;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;
using FeatureOnnx.Sinks;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Pipeline;

/// <summary>Options for <see cref="EndToEndExtraction"/>. Every default is documented and safe.</summary>
public sealed record EndToEndExtractionOptions
{
    /// <summary>Image files, folders (walked recursively), @LIST.txt files and .tar shards, as <see cref="FolderSource"/> reads them.</summary>
    public required IReadOnlyList<string> Inputs { get; init; }

    /// <summary>Where index.csv, errors.csv, run.json and one OUTPUT.npy per float output go.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>An end-to-end model written by <c>featureonnx export-e2e</c>.</summary>
    public required string Model { get; init; }

    /// <summary>
    /// How to start a worker process (<c>featureonnx e2e-worker</c>) that runs the model, so that a decoder crash or
    /// hang costs one item, not the run. Null: run the model in this process (only for inputs you trust: checks
    /// still run, but a stream that passes them and still kills libjpeg ends the run). Default: null.
    /// </summary>
    public WorkerCommand? Worker { get; init; }

    /// <summary>Worker processes (or concurrent in-process runs). Default 1.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>
    /// Images per model call when the model is batched (<see cref="Models.EndToEndOptions.Batched"/>); one otherwise.
    /// A call that fails is retried image by image, so one bad file still costs only itself. Default 8.
    /// </summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Longest one image may take in a worker before the worker is killed and the image fails (a batch gets this per image). Default 30 s.</summary>
    public TimeSpan ItemTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Refuse images whose header declares more pixels. Default 100 megapixels.</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Refuse input files (and tar members) larger than this, from their size, before any byte is read. Default <see cref="InputFile.DefaultMaxFileBytes"/> (1 GiB).</summary>
    public long MaxFileBytes { get; init; } = InputFile.DefaultMaxFileBytes;

    /// <summary>
    /// Check each file (<see cref="EndToEndInputCheck"/>) before it reaches DecodeImage. Default true; false only to
    /// test that the worker alone contains what the checks would have stopped.
    /// </summary>
    public bool CheckInputs { get; init; } = true;

    /// <summary>Replace the results of an earlier run in <see cref="OutputDirectory"/>. Default: false (refuse).</summary>
    public bool Overwrite { get; init; }

    /// <summary>Continue an unfinished run in <see cref="OutputDirectory"/> (killed, crashed or interrupted) with the
    /// same settings: committed rows are kept, the rest is done. Default: false.</summary>
    public bool Resume { get; init; }

    /// <summary>The model's float outputs to write, by name. Empty: all of them (the crop, uint8, is never written). Default: empty.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>Pool -> PCA -> L2 applied to every written output, exactly as <see cref="ExtractionOptions.PostProcess"/>. Default: none.</summary>
    public PostProcessOptions PostProcess { get; init; } = new();

    /// <summary>ONNX Runtime settings (provider, threads; 0 threads: the cores shared out among the workers).</summary>
    public SessionSettings Session { get; init; } = new();

    /// <summary>Process only this deterministic part of the inputs. Default: all.</summary>
    public Shard Shard { get; init; } = Shard.All;
}

/// <summary>
/// <c>extract --e2e</c>: encoded files go, one per call, into an end-to-end model (<see cref="Models.EndToEndModelBuilder"/>);
/// the same files as <see cref="ExtractionPipeline"/> come out, through the same <see cref="OutputStage"/> (OUTPUT.npy post-processed as asked,
/// index.csv, errors.csv, run.json; resumable), in input order.
/// Each file is first checked (<see cref="EndToEndInputCheck"/>); the model then runs in worker processes
/// (<see cref="EndToEndWorkerClient"/>) with a time limit, so a file that kills or hangs the decoder is one line in
/// errors.csv and the worker is restarted.
/// </summary>
public sealed class EndToEndExtraction
{
    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Runs the job: prepare (workers, inputs, output folder), produce (checked files -> model runners), consume (<see cref="OutputStage"/>).</summary>
    /// <exception cref="IOException">The output folder already holds a run and <see cref="EndToEndExtractionOptions.Overwrite"/> is false.</exception>
    /// <exception cref="InvalidOperationException">No worker could load the model.</exception>
    /// <exception cref="ArgumentException">A requested layer is not one of the model's float outputs.</exception>
    public async Task<ExtractionResult> RunAsync(EndToEndExtractionOptions options, IProgress<ExtractionProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (options.Workers <= 0) throw new ArgumentException("workers must be positive.");
        if (options.BatchSize <= 0) throw new ArgumentException("batch size must be positive.");
        InputFile.CheckLimit(options.MaxFileBytes);
        if (!File.Exists(options.Model)) throw new FileNotFoundException($"end-to-end model not found: {options.Model}. Make one with 'featureonnx export-e2e'.", options.Model);
        var outDir = options.OutputDirectory;
        if (FeatureOutputFolder.Check(outDir, options.Overwrite, options.Resume))
            return FeatureOutputFolder.ReadSummary<ExtractionResult>(outDir)! with { AlreadyComplete = true };
        var wall = Stopwatch.StartNew();
        var settings = options.Session.IntraOpThreads == 0 && options.Workers > 1
            ? options.Session with { IntraOpThreads = Math.Max(1, Environment.ProcessorCount / options.Workers) }
            : options.Session;
        await using var runners = new Runners(options, settings);
        var warnings = new List<string>();
        var creation = Stopwatch.StartNew();
        await runners.WarmUpAsync();
        creation.Stop();
        if (runners.Fallback is not null) warnings.Add(runners.Fallback);
        var (conversion, outputs, rowShapes) = ReadModel(options.Model, options.Layers);

        var selection = await InputSelection.ListAsync(options.Inputs, options.MaxFileBytes, options.Shard, cancellation);
        var job = OutputStage.Job(Path.GetFullPath(options.Model), outputs, options.Inputs, options.Shard, options.MaxPixels, options.MaxFileBytes, options.PostProcess);
        job["path"] = "e2e";
        if (!options.CheckInputs) job["checkInputs"] = "false";
        using var stage = OutputStage.Open(outDir, job, outputs, options.Resume, selection, options.PostProcess, progress, warnings);
        var check = new EndToEndInputCheck(options.MaxPixels);
        long checkTicks = 0, runTicks = 0;
        // Windows of a few calls per worker keep every worker busy and the output in input order.
        var perCall = runners.IsBatched ? options.BatchSize : 1;
        foreach (var window in stage.Pending.Items.Chunk(options.Workers * perCall * 2))
        {
            if (cancellation.IsCancellationRequested) break;
            var results = new (IReadOnlyList<EndToEndOutput>? Outputs, string? Error)[window.Length];
            var checkedItems = new (byte[]? Bytes, int Orientation)[window.Length];
            var t0 = Stopwatch.GetTimestamp();
            var reads = Task.Run(() => Parallel.For(0, window.Length, i =>
            {
                var (bytes, orientation, reason) = ReadAndCheck(window[i], options.CheckInputs ? check : null, options.MaxFileBytes);
                checkedItems[i] = (bytes, orientation);
                if (reason is not null) results[i] = (null, reason);
            }), CancellationToken.None);
            try
            {
                await reads.WaitAsync(cancellation); // a read stuck in the kernel must not hold up a stop
            }
            catch (OperationCanceledException)
            {
                break;
            }
            var t1 = Stopwatch.GetTimestamp();
            checkTicks += t1 - t0;
            var calls = Enumerable.Range(0, window.Length).Where(i => checkedItems[i].Bytes is not null).Chunk(perCall).ToList();
            await Parallel.ForEachAsync(calls, new ParallelOptions { MaxDegreeOfParallelism = options.Workers, CancellationToken = CancellationToken.None },
                async (call, _) =>
                {
                    var replies = await runners.RunAsync(call.Select(i => (checkedItems[i].Bytes!, checkedItems[i].Orientation)).ToList());
                    for (var k = 0; k < call.Length; k++) results[call[k]] = replies[k];
                });
            runTicks += Stopwatch.GetTimestamp() - t1;
            var rows = new WindowRows(outputs);
            for (var i = 0; i < window.Length; i++) rows.Add(window[i].Key, results[i].Outputs, results[i].Error);
            stage.Write(rows.Keys, rows.Failed, outputs, rows.Shape, rows.Values);
        }
        var status = stage.Finish(cancellation.IsCancellationRequested, rowShapes);
        if (runners.Restarts > 0)
            warnings.Add($"{runners.Restarts} worker process(es) were lost to inputs (crash or time limit) and restarted; those inputs are in errors.csv.");

        var result = stage.Summary(status, runners.ModelName ?? Path.GetFileNameWithoutExtension(options.Model), runners.Provider.ToString().ToLowerInvariant(),
            wall.Elapsed, creation.Elapsed, checkTicks / (double)Stopwatch.Frequency, runTicks / (double)Stopwatch.Frequency) with
        {
            Precision = conversion is null ? "fp32" : PreparedModel.Name(conversion.Precision),
            PrecisionConversion = conversion,
            Manifest = Path.GetFullPath(options.Model),
            ProviderFallback = runners.Fallback,
            BatchSize = perCall,
            DecodeWorkers = options.Workers,
            IntraOpThreads = settings.ResolvedIntraOpThreads,
            Decoders = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["all"] = "ONNX Runtime Extensions DecodeImage, inside the model (IJG libjpeg 9 for JPEG)" },
            Warnings = warnings,
        };
        stage.WriteSummary(result);
        return result;
    }

    /// <summary>
    /// From the model file: its precision conversion (the end-to-end file keeps the network's metadata: an fp16 model
    /// converted before export-e2e says so), the outputs to write (<paramref name="requested"/>, or all float outputs
    /// when empty) and the row shape of each of those whose dimensions after the batch axis are fixed.
    /// </summary>
    /// <exception cref="ArgumentException">A requested name is not a float output of the model; the message lists them.</exception>
    private static (PrecisionConversion? Conversion, IReadOnlyList<string> Outputs, Dictionary<string, long[]> RowShapes) ReadModel(string modelPath, IReadOnlyList<string> requested)
    {
        var graph = OnnxGraph.Load(modelPath);
        var floats = graph.Proto.Graph.Output.Where(o => o.Type?.TensorType?.ElemType == (int)Onnx.TensorProto.Types.DataType.Float).ToList();
        var names = floats.Select(o => o.Name).ToList();
        var unknown = requested.Where(r => !names.Contains(r)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"{modelPath} has no float output {string.Join(", ", unknown.Select(u => $"'{u}'"))}; its outputs are {string.Join(", ", names)}. " +
                                        "Export the end-to-end model again with the outputs you need.");
        var chosen = requested.Count == 0 ? names : requested.Distinct(StringComparer.Ordinal).ToList();
        var rowShapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var o in floats.Where(o => chosen.Contains(o.Name)))
        {
            var dims = o.Type.TensorType.Shape?.Dim.Skip(1).ToList();
            if (dims is { Count: > 0 } && dims.All(d => d.DimValue > 0)) rowShapes[o.Name] = dims.Select(d => d.DimValue).ToArray();
        }
        return (PrecisionConversion.ReadFrom(graph), chosen, rowShapes);
    }

    /// <summary>A window's results in input order, as the output stage takes them: the keys and rows of the images that ran, and the failures.</summary>
    private sealed class WindowRows(IReadOnlyList<string> outputs)
    {
        private readonly Dictionary<string, (long[] RowShape, List<float[]> Rows)> _byOutput = outputs.ToDictionary(o => o, _ => (Array.Empty<long>(), new List<float[]>()), StringComparer.Ordinal);

        public List<string> Keys { get; } = [];

        public List<InputProblem> Failed { get; } = [];

        public void Add(string key, IReadOnlyList<EndToEndOutput>? produced, string? error)
        {
            if (produced is null)
            {
                Failed.Add(new InputProblem(key, error ?? "unknown failure"));
                return;
            }
            foreach (var name in outputs)
            {
                var output = produced.FirstOrDefault(o => o.Name == name && o.Floats is not null)
                             ?? throw new InvalidDataException($"the end-to-end model gave no float output '{name}' for {key}.");
                var (rowShape, rows) = _byOutput[name];
                if (rows.Count == 0) _byOutput[name] = (output.Shape[1..], rows);
                else if (!rowShape.SequenceEqual(output.Shape[1..]))
                    throw new InvalidDataException($"output '{name}' changed shape from [{string.Join(",", rowShape)}] to [{string.Join(",", output.Shape[1..])}] on {key}");
                rows.Add(output.Floats!);
            }
            Keys.Add(key);
        }

        public long[] Shape(string output) => [Keys.Count, .. _byOutput[output].RowShape];

        public ReadOnlySpan<float> Values(string output) => _byOutput[output].Rows.SelectMany(r => r).ToArray();
    }

    private static (byte[]? Bytes, int Orientation, string? Reason) ReadAndCheck(InputItem item, EndToEndInputCheck? check, long maxFileBytes)
    {
        if (InputSelection.Read(item, maxFileBytes, (i, max) => i.ReadBytes(max), out var unreadable) is not { } bytes) return (null, 1, unreadable);
        if (check is null) return (bytes, 1, null);
        try
        {
            return (bytes, check.Check(bytes).Orientation, null);
        }
        catch (ImageDecodeException e)
        {
            return (null, 1, e.Message);
        }
        catch (Exception e)
        {
            return (null, 1, $"header check failure ({e.GetType().Name}): {e.Message}");
        }
    }

    /// <summary>The model runners: worker processes, started on demand and replaced when lost, or in-process sessions.</summary>
    private sealed class Runners(EndToEndExtractionOptions options, SessionSettings settings) : IAsyncDisposable
    {
        private readonly ConcurrentBag<EndToEndWorkerClient> _idle = [];
        private EndToEndSession? _inProcess;
        private int _restarts;

        public int Restarts => _restarts;
        public string? ModelName { get; private set; }
        public string? Fallback { get; private set; }
        public ExecutionProviderKind Provider { get; private set; }
        public bool IsBatched { get; private set; }

        private EndToEndWorkerClient StartWorker() => new(options.Worker!, Path.GetFullPath(options.Model), settings, StartupTimeout);

        public async Task WarmUpAsync()
        {
            if (options.Worker is null)
            {
                _inProcess = new EndToEndSession(options.Model, settings);
                (ModelName, Provider, Fallback, IsBatched) = (_inProcess.ModelName, _inProcess.Provider, _inProcess.Fallback, _inProcess.IsBatched);
                return;
            }
            var starting = Enumerable.Range(0, options.Workers).Select(_ => Task.Run(StartWorker)).ToList();
            try
            {
                await Task.WhenAll(starting);
            }
            catch
            {
                foreach (var t in starting.Where(t => t.IsCompletedSuccessfully)) t.Result.Dispose();
                throw;
            }
            var started = starting.Select(t => t.Result).ToList();
            foreach (var w in started) _idle.Add(w);
            // Every worker made the same choice from the same settings and machine; the first one's stands for all.
            (ModelName, Provider, Fallback, IsBatched) = (started[0].ModelName, started[0].Provider, started[0].Fallback, started[0].IsBatched);
        }

        /// <summary>Runs one call; when a call of several images fails, each is run alone so that only the bad one fails.</summary>
        public async Task<IReadOnlyList<(IReadOnlyList<EndToEndOutput>?, string?)>> RunAsync(IReadOnlyList<(byte[] Bytes, int Orientation)> images)
        {
            var reply = await RunOnceAsync(images);
            if (reply.Outputs is not null) return reply.Outputs.Select(o => ((IReadOnlyList<EndToEndOutput>?)o, (string?)null)).ToList();
            if (images.Count == 1) return [(null, reply.Error)];
            var singles = new List<(IReadOnlyList<EndToEndOutput>?, string?)>();
            foreach (var image in images)
            {
                var one = await RunOnceAsync([image]);
                singles.Add((one.Outputs?[0], one.Error));
            }
            return singles;
        }

        private async Task<WorkerReply> RunOnceAsync(IReadOnlyList<(byte[] Bytes, int Orientation)> images)
        {
            if (_inProcess is not null)
            {
                try
                {
                    return new WorkerReply(_inProcess.RunBatch(images.Select(i => i.Bytes).ToList(), images.Select(i => i.Orientation).ToList()), null);
                }
                catch (Exception e)
                {
                    return new WorkerReply(null, e.Message.Split('\n')[0]);
                }
            }
            if (!_idle.TryTake(out var worker))
                worker = await Task.Run(StartWorker);
            var reply = await Task.Run(() => worker.Run(images, options.ItemTimeout * images.Count));
            if (worker.IsAlive)
                _idle.Add(worker);
            else
            {
                Interlocked.Increment(ref _restarts);
                worker.Dispose();
                _idle.Add(await Task.Run(StartWorker));
            }
            return reply;
        }

        public ValueTask DisposeAsync()
        {
            _inProcess?.Dispose();
            while (_idle.TryTake(out var w)) w.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
