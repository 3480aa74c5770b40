using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using FeatureOnnx.Formats;
using FeatureOnnx.Models;
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

    /// <summary>ONNX Runtime settings (provider, threads; 0 threads: the cores shared out among the workers).</summary>
    public SessionSettings Session { get; init; } = new();

    /// <summary>Process only this deterministic part of the inputs. Default: all.</summary>
    public Shard Shard { get; init; } = Shard.All;
}

/// <summary>
/// <c>extract --e2e</c>: encoded files go, one per call, into an end-to-end model (<see cref="Models.EndToEndModelBuilder"/>);
/// the same files as <see cref="ExtractionPipeline"/> come out (OUTPUT.npy, index.csv, errors.csv, run.json), in input order.
/// Each file is first checked (<see cref="EndToEndInputCheck"/>); the model then runs in worker processes
/// (<see cref="EndToEndWorkerClient"/>) with a time limit, so a file that kills or hangs the decoder is one line in
/// errors.csv and the worker is restarted.
/// </summary>
public sealed class EndToEndExtraction
{
    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Runs the job.</summary>
    /// <exception cref="IOException">The output folder already holds a run and <see cref="EndToEndExtractionOptions.Overwrite"/> is false.</exception>
    /// <exception cref="InvalidOperationException">No worker could load the model.</exception>
    public async Task<ExtractionResult> RunAsync(EndToEndExtractionOptions options, IProgress<ExtractionProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (options.Workers <= 0) throw new ArgumentException("workers must be positive.");
        if (options.BatchSize <= 0) throw new ArgumentException("batch size must be positive.");
        InputFile.CheckLimit(options.MaxFileBytes);
        if (!File.Exists(options.Model)) throw new FileNotFoundException($"end-to-end model not found: {options.Model}. Make one with 'featureonnx export-e2e'.", options.Model);
        var outDir = options.OutputDirectory;
        if (Directory.Exists(outDir) && File.Exists(Path.Combine(outDir, "run.json")) && !options.Overwrite)
            throw new IOException($"{outDir} already holds a run (run.json). Choose another folder or pass --overwrite to replace it.");
        if (!options.Overwrite) OutputFolder.RefuseForeign(outDir);
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

        // Listing stats every file (and reads @lists, which may be pipes): a hung file system must not hold up a stop.
        var listing = await Task.Run(() => FolderSource.Enumerate(options.Inputs, options.MaxFileBytes), CancellationToken.None).WaitAsync(cancellation);
        ExtractionPipeline.RefuseEmpty(listing, options.Inputs);
        if (options.Shard.Count > 1)
            listing = listing with
            {
                Items = listing.Items.Where(i => options.Shard.Contains(i.Key)).ToList(),
                Problems = listing.Problems.Where(p => options.Shard.Contains(p.Key)).ToList(),
            };
        Directory.CreateDirectory(outDir);
        foreach (var stale in Directory.EnumerateFiles(outDir, "*.npy").Concat(Directory.EnumerateFiles(outDir, "*.partial")))
            File.Delete(stale);
        using var index = new CsvLog(Path.Combine(outDir, "index.csv"), "row", "path");
        using var errors = new CsvLog(Path.Combine(outDir, "errors.csv"), "path", "reason");
        foreach (var problem in listing.Problems) errors.Write(problem.Key, problem.Reason);
        var writers = new Dictionary<string, NpyWriter>();
        var check = new EndToEndInputCheck(options.MaxPixels);
        long checkTicks = 0, runTicks = 0, writeTicks = 0, rows = 0, done = 0, failed = listing.Problems.Count - listing.ListedNonImageFiles;
        var batchClock = Stopwatch.StartNew();
        var status = "failed";
        try
        {
            // Windows of a few calls per worker keep every worker busy and the output in input order.
            var perCall = runners.IsBatched ? options.BatchSize : 1;
            foreach (var window in listing.Items.Chunk(options.Workers * perCall * 2))
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
                var tw = Stopwatch.GetTimestamp();
                for (var i = 0; i < window.Length; i++)
                {
                    var (outputs, error) = results[i];
                    done++;
                    if (outputs is null)
                    {
                        errors.Write(window[i].Key, error ?? "unknown failure");
                        failed++;
                        continue;
                    }
                    foreach (var o in outputs.Where(o => o.Floats is not null))
                    {
                        if (!writers.TryGetValue(o.Name, out var writer))
                            writers[o.Name] = writer = new NpyWriter(Path.Combine(outDir, o.Name + ".npy"), o.Shape[1..]);
                        if (!writer.RowShape.SequenceEqual(o.Shape[1..]))
                            throw new InvalidDataException($"output '{o.Name}' changed shape from [{string.Join(",", writer.RowShape)}] to [{string.Join(",", o.Shape[1..])}] on {window[i].Key}");
                        writer.Append(o.Floats);
                    }
                    index.Write((rows++).ToString(CultureInfo.InvariantCulture), window[i].Key);
                }
                writeTicks += Stopwatch.GetTimestamp() - tw;
                progress?.Report(new ExtractionProgress(done + listing.Problems.Count, failed, listing.Items.Count + listing.Problems.Count, batchClock.Elapsed));
            }
            batchClock.Stop();
            status = cancellation.IsCancellationRequested && done < listing.Items.Count ? "interrupted" : "completed";
            foreach (var w in writers.Values) w.Complete();
            index.Complete();
            errors.Complete();
        }
        finally
        {
            foreach (var w in writers.Values) w.Dispose();
        }
        if (runners.Restarts > 0)
            warnings.Add($"{runners.Restarts} worker process(es) were lost to inputs (crash or time limit) and restarted; those inputs are in errors.csv.");

        // the end-to-end file keeps the network's metadata: an fp16 model converted before export-e2e says so
        var conversion = File.Exists(options.Model) ? PrecisionConversion.ReadFrom(OnnxGraph.Load(options.Model)) : null;
        var result = new ExtractionResult
        {
            Status = status,
            Precision = conversion is null ? "fp32" : PreparedModel.Name(conversion.Precision),
            PrecisionConversion = conversion,
            Model = runners.ModelName ?? Path.GetFileNameWithoutExtension(options.Model),
            Manifest = Path.GetFullPath(options.Model),
            Provider = runners.Provider.ToString().ToLowerInvariant(),
            ProviderFallback = runners.Fallback,
            Layers = writers.ToDictionary(p => p.Key, p => (long[])[p.Value.Rows, .. p.Value.RowShape]),
            Inputs = listing.Items.Count + listing.Problems.Count,
            Extracted = rows,
            Failed = failed,
            NotProcessed = listing.Items.Count - done,
            SkippedNonImageFiles = listing.SkippedNonImageFiles,
            Shard = options.Shard.ToString(),
            BatchSize = runners.IsBatched ? options.BatchSize : 1,
            DecodeWorkers = options.Workers,
            IntraOpThreads = settings.ResolvedIntraOpThreads,
            Decoders = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["all"] = "ONNX Runtime Extensions DecodeImage, inside the model (IJG libjpeg 9 for JPEG)" },
            Seconds = new Dictionary<string, double>
            {
                ["wall"] = wall.Elapsed.TotalSeconds,
                ["sessionCreation"] = creation.Elapsed.TotalSeconds,
                ["batches"] = batchClock.Elapsed.TotalSeconds,
                ["decodeBusy"] = checkTicks / (double)Stopwatch.Frequency,
                ["inferenceBusy"] = runTicks / (double)Stopwatch.Frequency,
                ["writeBusy"] = writeTicks / (double)Stopwatch.Frequency,
            },
            ImagesPerSecond = batchClock.Elapsed.TotalSeconds > 0 ? done / batchClock.Elapsed.TotalSeconds : 0,
            Warnings = warnings,
            FinishedUtc = DateTime.UtcNow,
        };
        RunSummary.Write(Path.Combine(outDir, "run.json"), result);
        return result;
    }

    private static (byte[]? Bytes, int Orientation, string? Reason) ReadAndCheck(InputItem item, EndToEndInputCheck? check, long maxFileBytes)
    {
        byte[] bytes;
        try
        {
            bytes = item.ReadBytes(maxFileBytes);
        }
        catch (Exception e)
        {
            return (null, 1, ExtractionPipeline.ReadFailure(e));
        }
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

        private WorkerCommand WorkerFor(WorkerCommand command) => command with
        {
            Arguments = [.. command.Arguments, "--model", Path.GetFullPath(options.Model), "--threads", settings.IntraOpThreads.ToString(CultureInfo.InvariantCulture),
                "--provider", settings.Provider == ExecutionProviderKind.Cuda ? $"cuda:{settings.DeviceId}" : "cpu",
                .. settings.FallbackToCpu ? (string[])["--fallback", "cpu"] : [],
                .. settings.Cuda.IsDefault ? [] : (string[])["--cuda-options", settings.Cuda.ToString()],
                "--optimization", settings.OptimizationLevel switch
                {
                    Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL => "none",
                    Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_BASIC => "basic",
                    Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED => "extended",
                    _ => "all",
                }],
        };

        public async Task WarmUpAsync()
        {
            if (options.Worker is null)
            {
                _inProcess = new EndToEndSession(options.Model, settings);
                (ModelName, Provider, Fallback, IsBatched) = (_inProcess.ModelName, _inProcess.Provider, _inProcess.Fallback, _inProcess.IsBatched);
                return;
            }
            var command = WorkerFor(options.Worker);
            var starting = Enumerable.Range(0, options.Workers).Select(_ => Task.Run(() => new EndToEndWorkerClient(command, StartupTimeout))).ToList();
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
                worker = await Task.Run(() => new EndToEndWorkerClient(WorkerFor(options.Worker!), StartupTimeout));
            var reply = await Task.Run(() => worker.Run(images, options.ItemTimeout * images.Count));
            if (worker.IsAlive)
                _idle.Add(worker);
            else
            {
                Interlocked.Increment(ref _restarts);
                worker.Dispose();
                _idle.Add(await Task.Run(() => new EndToEndWorkerClient(WorkerFor(options.Worker!), StartupTimeout)));
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
