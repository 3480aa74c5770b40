using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using FeatureOnnx.Formats;
using FeatureOnnx.Models;
using FeatureOnnx.PostProcessing;
using FeatureOnnx.Preprocessing;
using FeatureOnnx.Runtime;
using FeatureOnnx.Sinks;
using FeatureOnnx.Sources;

namespace FeatureOnnx.Pipeline;

/// <summary>Options for <see cref="ExtractionPipeline"/>. Every default is documented and safe.</summary>
public sealed record ExtractionOptions
{
    /// <summary>Image files and folders (walked recursively).</summary>
    public required IReadOnlyList<string> Inputs { get; init; }

    /// <summary>Where index.csv, errors.csv, run.json and one LAYER.npy per output go.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Built-in name, manifest path or ONNX path. Default: <see cref="ModelCatalog.DefaultModelName"/>.</summary>
    public string Model { get; init; } = ModelCatalog.DefaultModelName;

    /// <summary>Outputs to extract (manifest names, or TENSOR[=alias]). Empty: the manifest's defaults.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>Images per inference call. Default 32.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Parallel decode/preprocess workers (dedicated threads). Default: one per core.</summary>
    public int DecodeWorkers { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Linux nice value of the decode threads when inference runs on the CPU, so that they share the cores with
    /// ONNX Runtime's threads without stalling them (0..19; 0 leaves them at normal priority; ignored elsewhere and
    /// on CUDA, where decoding is the bottleneck). Default 10.
    /// </summary>
    public int DecodeNice { get; init; } = 10;

    /// <summary>Refuse images whose header declares more pixels. Default 100 megapixels.</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>
    /// Refuse input files (and tar members) larger than this, from their size, before any byte is read; at most
    /// <see cref="InputFile.LargestMaxFileBytes"/>. Default <see cref="InputFile.DefaultMaxFileBytes"/> (1 GiB, more
    /// than any image within <see cref="MaxPixels"/> takes).
    /// </summary>
    public long MaxFileBytes { get; init; } = InputFile.DefaultMaxFileBytes;

    /// <summary>
    /// Decode large JPEGs at 1/2, 1/4 or 1/8 of their size in libjpeg-turbo's DCT domain, chosen from the manifest's
    /// resize target (<see cref="Preprocessing.DecodeScale"/>): <see cref="DecodeScale.Draft"/> gives PIL's crops after
    /// <c>Image.draft</c>, <see cref="DecodeScale.Auto"/> keeps the shorter side at least twice the target (features
    /// very close to exact; README has the figures). Default: <see cref="DecodeScale.Exact"/>, full-size decodes.
    /// </summary>
    public DecodeScale DecodeScale { get; init; } = DecodeScale.Exact;

    /// <summary>
    /// Where images are decoded and resized (<see cref="Preprocessing.DecodeDevice"/>): on the GPU with nvJPEG and the
    /// PIL-exact CUDA resize, or on the CPU. Default <see cref="DecodeDevice.Auto"/>: the GPU when the run is on CUDA
    /// and the GPU decoder starts, else the CPU.
    /// </summary>
    public DecodeDevice Decoder { get; init; } = DecodeDevice.Auto;

    /// <summary>With <see cref="Decoder"/> = <see cref="DecodeDevice.Gpu"/>: decode on the CPU (with a warning) where the
    /// GPU decoder cannot start, instead of failing. Default false.</summary>
    public bool DecoderFallbackToCpu { get; init; }

    /// <summary>Replace the results of an earlier run in <see cref="OutputDirectory"/>. Default: false (refuse).</summary>
    public bool Overwrite { get; init; }

    /// <summary>Continue an unfinished run in <see cref="OutputDirectory"/> (killed, crashed or interrupted) with the
    /// same settings: committed rows are kept, the rest is done. Default: false.</summary>
    public bool Resume { get; init; }

    /// <summary>ONNX Runtime settings (provider, threads).</summary>
    public SessionSettings Session { get; init; } = new();

    /// <summary>
    /// Hand ONNX Runtime the 8-bit crops and normalise inside the graph (<see cref="PrepareOptions.Uint8Input"/>):
    /// a quarter of the bytes per batch, identical values. Default null: on for CUDA, where every batch crosses
    /// PCIe, off for the CPU, where the bytes are not copied anywhere and the normalisation would move from the decode
    /// threads onto the inference threads. Not with <see cref="TensorsIn"/> (already float32).
    /// </summary>
    public bool? Uint8Input { get; init; }

    /// <summary>
    /// Precision to run at (<see cref="PrepareOptions.Precision"/>): fp16 or int8 (calibrated on <see cref="CalibrationInputs"/>) converts the float32 model when the session is
    /// prepared. Default null: the model's own (fp32 unless it was converted by <c>featureonnx convert</c>).
    /// </summary>
    public ModelPrecision? Precision { get; init; }

    /// <summary>
    /// int8: the images to calibrate on (folders, @lists, tar shards). Default null: the first
    /// <see cref="CalibrationOptions.Count"/> images of <see cref="Inputs"/>, which the run reports as a warning and in run.json.
    /// </summary>
    public IReadOnlyList<string>? CalibrationInputs { get; init; }

    /// <summary>int8: calibration method and image count. Default: <see cref="CalibrationOptions"/>'s (percentile 99.99, 256 images).</summary>
    public CalibrationOptions Calibration { get; init; } = new();

    /// <summary>int8: which ops to quantise (<see cref="Int8Options"/>; its calibrator is made from <see cref="CalibrationInputs"/>). Default: <see cref="Int8Options"/>'s.</summary>
    public Int8Options Int8 { get; init; } = new();

    /// <summary>Where converted graphs are kept (<see cref="PrepareOptions.Cache"/>). Default: a <see cref="ConversionCache"/> next to the model, else the user cache folder.</summary>
    public ConversionCache? ConversionCache { get; init; } = new();

    /// <summary>
    /// A float32 .npy of already preprocessed inputs ([N, C, H, W] as the model takes them), used instead of
    /// <see cref="Inputs"/>: decoding and resizing taken out, for comparing the runtime alone with PyTorch.
    /// index.csv keys are <c>FILE#ROW</c>. Default: null.
    /// </summary>
    public string? TensorsIn { get; init; }

    /// <summary>Pool -> PCA -> L2 applied to every extracted output before it is written. Default: none.</summary>
    public PostProcessOptions PostProcess { get; init; } = new();

    /// <summary>Process only this deterministic part of the inputs (see <see cref="Pipeline.Shard"/>). Default: all.</summary>
    public Shard Shard { get; init; } = Shard.All;

    /// <summary>Model catalog used to resolve <see cref="Model"/>. Default: the app's built-in models.</summary>
    public ModelCatalog? Catalog { get; init; }
}

/// <summary>Progress of a run, reported after every batch.</summary>
/// <param name="Done">Inputs finished (extracted or failed).</param>
/// <param name="Failed">Inputs that went to errors.csv.</param>
/// <param name="Total">Inputs found.</param>
/// <param name="Elapsed">Time since the first batch started.</param>
public sealed record ExtractionProgress(long Done, long Failed, long Total, TimeSpan Elapsed)
{
    /// <summary>Throughput so far.</summary>
    public double ImagesPerSecond => Elapsed.TotalSeconds > 0 ? Done / Elapsed.TotalSeconds : 0;
}

/// <summary>What a run did; also written to run.json.</summary>
public sealed record ExtractionResult
{
    /// <summary>"completed", "interrupted" or "failed".</summary>
    public required string Status { get; init; }
    /// <summary>Model name.</summary>
    public required string Model { get; init; }
    /// <summary>Manifest file, when there is one.</summary>
    public string? Manifest { get; init; }
    /// <summary>Execution provider that ran the model.</summary>
    public required string Provider { get; init; }
    /// <summary>Set when the requested provider was replaced by the CPU.</summary>
    public string? ProviderFallback { get; init; }
    /// <summary>True when ONNX Runtime was fed 8-bit crops and normalised them in the graph.</summary>
    public bool Uint8Input { get; init; }
    /// <summary>Output name -> shape of its .npy file (rows first).</summary>
    public required IReadOnlyDictionary<string, long[]> Layers { get; init; }
    /// <summary>Inputs found.</summary>
    public long Inputs { get; init; }
    /// <summary>Rows written.</summary>
    public long Extracted { get; init; }
    /// <summary>Inputs in errors.csv, except the files in folders that are not images.</summary>
    public long Failed { get; init; }
    /// <summary>Inputs not reached because the run was interrupted.</summary>
    public long NotProcessed { get; init; }
    /// <summary>Files in input folders (listed in errors.csv as not images, and not counted in <see cref="Failed"/>) and tar members that do not have an image extension.</summary>
    public long SkippedNonImageFiles { get; init; }
    /// <summary>The shard processed, I/N.</summary>
    public string Shard { get; init; } = "0/1";
    /// <summary>Images per inference call.</summary>
    public int BatchSize { get; init; }
    /// <summary>Decode workers.</summary>
    public int DecodeWorkers { get; init; }
    /// <summary>ONNX Runtime intra-op threads each session ran with (per worker process for --e2e).</summary>
    public int IntraOpThreads { get; init; }
    /// <summary>Which library decoded which files: <c>jpeg</c> and <c>other</c> (e.g. "libjpeg-turbo 2.1.5 (bundled: PATH)",
    /// "ImageSharp 2.1.13"); for end-to-end models, the graph's decoder.</summary>
    public IReadOnlyDictionary<string, string>? Decoders { get; init; }
    /// <summary>Seconds: wall clock, session creation, and the busy time of each stage (summed over workers for decode).</summary>
    public required IReadOnlyDictionary<string, double> Seconds { get; init; }
    /// <summary>True when this run continued an earlier, unfinished one.</summary>
    public bool Resumed { get; init; }
    /// <summary>Images per second over the wall clock of the batches.</summary>
    public double ImagesPerSecond { get; init; }
    /// <summary>Nodes pruned from the graph because no requested output needs them.</summary>
    public int PrunedNodes { get; init; }
    /// <summary>Pooling, PCA (with its file's SHA-256) and L2 applied to every output before it was written.</summary>
    public PostProcessSummary? PostProcess { get; init; }
    /// <summary>Set when the model's weights are not stored as trained (float16 storage in the deployment build).</summary>
    public string? WeightStorage { get; init; }
    /// <summary>The precision the graph ran at: fp32, fp16 or int8 (never converted silently; int8's calibration set is in <see cref="PrecisionConversion"/>).</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>How the graph was converted to <see cref="Precision"/>: the typed list of rules applied; null for a model run as stored.</summary>
    public PrecisionConversion? PrecisionConversion { get; init; }
    /// <summary>The cached converted graph used, when there was one.</summary>
    public string? ConvertedModel { get; init; }
    /// <summary>
    /// For int8 on the CPU: which activations ran on FeatureOnnx's kernels instead of ONNX Runtime's
    /// (<see cref="Runtime.SessionSettings.Int8ActivationKernels"/>); null where ONNX Runtime ran every operator.
    /// </summary>
    public string? Int8Kernels { get; init; }
    /// <summary>Warnings raised (assumed preprocessing, fixed-batch reshapes).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
    // --- decode scale (issue 17) ---
    /// <summary>The decode scale in force (exact, draft, auto, auto:F); null when images were not decoded by the
    /// library (tensors in, or an end-to-end model).</summary>
    public string? DecodeScale { get; init; }
    /// <summary>Images decoded at each scale ("1/1", "1/2", "1/4", "1/8"; unused scales left out); null as for <see cref="DecodeScale"/>.</summary>
    public IReadOnlyDictionary<string, long>? DecodedAtScale { get; init; }
    /// <summary>JPEGs decoded at full size that <c>auto</c> would have decoded at 1/2 or less.</summary>
    public long ReducibleJpegs { get; init; }
    /// <summary>
    /// True when <c>auto</c> would likely have been much faster: exact decode was in force, decoding took more busy time
    /// than inference and writing together, and at least a quarter of the images were JPEGs <c>auto</c> would reduce.
    /// </summary>
    public bool DecodeScaleAutoAdvised { get; init; }
    // --- end decode scale ---
    /// <summary>UTC time the run finished.</summary>
    public DateTime FinishedUtc { get; init; }
    /// <summary>
    /// True when <see cref="ExtractionOptions.Resume"/> found the run already completed: nothing was done and the rest
    /// of this result is the earlier run's summary. Not part of run.json.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool AlreadyComplete { get; init; }
    /// <summary>FeatureOnnx version.</summary>
    public string Version { get; init; } = typeof(ExtractionPipeline).Assembly.GetName().Version?.ToString() ?? "";
}

/// <summary>
/// The extraction job: enumerate inputs -> decode and preprocess on parallel workers -> batch -> ONNX Runtime ->
/// stream rows to LAYER.npy, index.csv and errors.csv. Decoding of the next batches overlaps inference of the
/// current one through a bounded channel, so memory stays at a few batches whatever the number of inputs.
/// Bad inputs go to errors.csv and never stop the run. Cancelling stops intake, finishes the batches already decoded
/// and writes consistent files (every row of every .npy matches index.csv); a batch still being decoded is dropped
/// (a later --resume does it), so a read stuck in the kernel does not hold up the stop.
/// </summary>
public sealed class ExtractionPipeline
{
    private const int BatchesInFlight = 2;

    /// <summary>How one input's bytes are read (<see cref="InputItem.ReadBytes"/>); tests replace it with a read that hangs.</summary>
    internal Func<InputItem, long, byte[]> ReadInput { get; init; } = (item, maxFileBytes) => item.ReadBytes(maxFileBytes);

    /// <summary>Runs the job: prepare (model, session, inputs, output folder), produce (decode workers -> ONNX Runtime), consume (<see cref="OutputStage"/>).</summary>
    /// <exception cref="ManifestException">The model cannot be resolved.</exception>
    /// <exception cref="IOException">The output folder already holds a run and <see cref="ExtractionOptions.Overwrite"/> is false.</exception>
    /// <exception cref="OperationCanceledException">Cancelled while the inputs were being listed, before the output folder was touched.</exception>
    /// <exception cref="FileNotFoundException">The inputs hold no image at all (nothing is written).</exception>
    public async Task<ExtractionResult> RunAsync(ExtractionOptions options, IProgress<ExtractionProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (options.BatchSize <= 0) throw new ArgumentException("batch size must be positive.");
        InputFile.CheckLimit(options.MaxFileBytes);
        if (options.DecodeWorkers <= 0) throw new ArgumentException("decode workers must be positive.");
        if (options.DecodeNice is < 0 or > 19) throw new ArgumentException("decode nice value must be 0..19.");
        var outDir = options.OutputDirectory;
        if (FeatureOutputFolder.Check(outDir, options.Overwrite, options.Resume))
            return FeatureOutputFolder.ReadSummary<ExtractionResult>(outDir)! with { AlreadyComplete = true };
        var wall = Stopwatch.StartNew();
        var catalog = options.Catalog ?? new ModelCatalog();
        var warnings = new List<string>();
        var manifest = catalog.Resolve(options.Model, warnings);
        if (options.Uint8Input == true && options.TensorsIn is not null)
            throw new SettingException("ExtractionOptions.Uint8Input = true", "cannot be used with ExtractionOptions.TensorsIn: those inputs are float32 tensors already.");
        var uint8 = options.TensorsIn is null && (options.Uint8Input ?? options.Session.Provider == ExecutionProviderKind.Cuda);
        var prepared = PreparedModel.Build(manifest, options.Layers, catalog, new PrepareOptions
        {
            Uint8Input = uint8,
            Precision = options.Precision,
            Int8 = options.Precision == ModelPrecision.Int8 && manifest.Precision == ModelPrecision.Fp32
                ? options.Int8 with { Calibrator = Calibrator(options, manifest, warnings) } : null,
            Cache = options.ConversionCache,
        });
        warnings.AddRange(prepared.Warnings);
        ArgumentNullException.ThrowIfNull(options.DecodeScale);
        var preprocessor = new ImagePreprocessor(manifest, options.MaxPixels, decodeScale: options.DecodeScale);
        if (options.TensorsIn is null && preprocessor.Decoder.JpegFallbackWarning is { } notPilExact) warnings.Add(notPilExact);
        if (options.TensorsIn is null && options.DecodeScale.Mode != DecodeScaleMode.Exact && preprocessor.Decoder.JpegDecoderName != "libjpeg-turbo")
            warnings.Add($"decode scale {options.DecodeScale} needs libjpeg-turbo, which is not loaded ({TurboJpegDecoder.UnavailableReason}): JPEGs are decoded at full size.");
        // Compile the decode path on a spare core while ONNX Runtime builds its session.
        var warmUp = options.TensorsIn is null ? Task.Run(() =>
        {
            try { preprocessor.WarmUp(); }
            catch (ImageDecodeException) { } // only a head start: real inputs report their own errors
        }) : Task.CompletedTask;
        var gpuProducer = GpuDecodeProducer.Choose(options, manifest, uint8, warnings);
        using var gpuScope = gpuProducer;
        // Decode threads and a CPU session share the cores: idle ONNX Runtime threads yield them instead of spinning.
        var decodesOnCpu = options.TensorsIn is null && options.Session.Provider == ExecutionProviderKind.Cpu;
        using var session = new FeatureSession(prepared, decodesOnCpu && options.Session.AllowSpinning is null
            ? options.Session with { AllowSpinning = false }
            : options.Session);
        if (session.Fallback is not null) warnings.Add(session.Fallback);
        if (gpuProducer is not null && session.Provider != ExecutionProviderKind.Cuda)
        {
            warnings.Add("images decoded on the CPU: the GPU decoder feeds the CUDA provider, and the session fell back to the CPU.");
            gpuProducer.Dispose();
            gpuProducer = null;
        }
        await warmUp;
        var selection = options.TensorsIn is null
            ? await InputSelection.ListAsync(options.Inputs, options.MaxFileBytes, options.Shard, cancellation)
            : InputSelection.Select(TensorListing(options.TensorsIn, manifest), options.Shard);

        var job = JobDescription(options, manifest, session.OutputNames, prepared.Precision);
        if (gpuProducer is not null) job["decoder"] = "gpu"; // nvJPEG's pixels differ from libjpeg-turbo's; absent for the CPU, so older journals still resume
        // Another calibration set or method quantises differently: a resumed int8 run must not mix the two in one file.
        if (prepared.Conversion?.Calibration is { } calibration) job["calibration"] = $"{calibration.Method}|{calibration.Images}|{calibration.Sha256}";
        using var stage = OutputStage.Open(outDir, job, session.OutputNames, options.Resume,
            selection, options.PostProcess, progress, warnings);
        var slot = session.SlotBytes;
        var pool = new ConcurrentBag<byte[]>();
        var channel = Channel.CreateBounded<DecodedBatch>(BatchesInFlight);
        long decodeTicks = 0, inferenceTicks = 0;
        // Stops the producer on a stop request, and when this method fails.
        using var stopProducer = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        string status;
        try
        {
            var producer = gpuProducer is not null ? Task.Run(async () =>
            {
                using var workers = new DecodeWorkers(options.DecodeWorkers, 0);
                try
                {
                    await gpuProducer.RunAsync(stage.Pending.Items, options.BatchSize, workers, preprocessor, ReadInput, options.MaxFileBytes, channel.Writer, stopProducer.Token);
                }
                catch (OperationCanceledException) when (stopProducer.IsCancellationRequested)
                {
                    // Stopped: the batch being decoded is dropped, uncommitted.
                }
                finally
                {
                    channel.Writer.Complete();
                }
            }, CancellationToken.None) : Task.Run(async () =>
            {
                using var workers = new DecodeWorkers(options.DecodeWorkers, session.Provider == ExecutionProviderKind.Cpu ? options.DecodeNice : 0);
                try
                {
                    foreach (var chunk in stage.Pending.Items.Chunk(options.BatchSize))
                    {
                        if (stopProducer.IsCancellationRequested) break;
                        if (!pool.TryTake(out var buffer)) buffer = new byte[options.BatchSize * slot];
                        var reasons = new string?[chunk.Length];
                        if (options.TensorsIn is not null)
                        {
                            ReadTensorRows(options.TensorsIn, chunk, buffer, slot);
                            await channel.Writer.WriteAsync(new DecodedBatch(buffer, chunk, []), CancellationToken.None);
                            continue;
                        }
                        workers.For(chunk.Length, i =>
                        {
                            var start = Stopwatch.GetTimestamp();
                            reasons[i] = DecodeInto(preprocessor, chunk[i], buffer.AsSpan(i * slot, slot), uint8, options.MaxFileBytes);
                            Interlocked.Add(ref decodeTicks, Stopwatch.GetTimestamp() - start);
                        }, stopProducer.Token);
                        // Close the gaps left by failed inputs so the good ones are contiguous.
                        var good = new List<InputItem>(chunk.Length);
                        var bad = new List<InputProblem>();
                        for (var i = 0; i < chunk.Length; i++)
                        {
                            if (reasons[i] is { } reason) { bad.Add(new InputProblem(chunk[i].Key, reason)); continue; }
                            if (good.Count != i) buffer.AsSpan(i * slot, slot).CopyTo(buffer.AsSpan(good.Count * slot, slot));
                            good.Add(chunk[i]);
                        }
                        await channel.Writer.WriteAsync(new DecodedBatch(buffer, good, bad), stopProducer.Token);
                    }
                }
                catch (OperationCanceledException) when (stopProducer.IsCancellationRequested)
                {
                    // Stopped: the batch being decoded (or waiting for room) is dropped, uncommitted.
                }
                finally
                {
                    channel.Writer.Complete();
                }
            }, CancellationToken.None);

            await foreach (var batch in channel.Reader.ReadAllAsync(CancellationToken.None))
            {
                var keys = batch.Items.Select(i => i.Key).ToList();
                if (batch.Items.Count > 0)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    using var outputs = batch.DeviceSlots != 0 ? session.RunDevice(batch.DeviceSlots, batch.Items.Count) : session.RunBound(batch.Buffer, batch.Items.Count);
                    inferenceTicks += Stopwatch.GetTimestamp() - t0;
                    stage.Write(keys, batch.Failed, session.OutputNames, outputs.Shape, outputs.Values);
                }
                else stage.Write(keys, batch.Failed, session.OutputNames, _ => [], _ => []);
                if (batch.Buffer.Length > 0) pool.Add(batch.Buffer);
                if (stopProducer.IsCancellationRequested) break; // what is committed stays; the batches behind it are dropped
            }
            await producer;
            // No image made it: still write [0, ...] files where the row shape is known, so consumers need no special case.
            status = stage.Finish(cancellation.IsCancellationRequested,
                prepared.Outputs.Where(o => o.Shape is not null).Select(o => KeyValuePair.Create(o.Name, o.Shape!.ToArray())));
        }
        finally
        {
            stopProducer.Cancel();
        }

        decodeTicks += gpuProducer?.DecodeTicks ?? 0;
        var decodeBusy = decodeTicks / (double)Stopwatch.Frequency;
        var inferenceBusy = inferenceTicks / (double)Stopwatch.Frequency;
        var summary = stage.Summary(status, manifest.Name, session.Provider.ToString().ToLowerInvariant(), wall.Elapsed, session.CreationTime, decodeBusy, inferenceBusy);
        var decoders = options.TensorsIn is null ? preprocessor.Decoder.Decoders : null;
        if (gpuProducer is not null) decoders = new SortedDictionary<string, string>(decoders!.ToDictionary(), StringComparer.Ordinal) { ["gpu"] = gpuProducer.Summary };
        var result = summary with
        {
            Manifest = manifest.ManifestPath,
            ProviderFallback = session.Fallback,
            Uint8Input = uint8,
            BatchSize = options.BatchSize,
            DecodeWorkers = options.DecodeWorkers,
            IntraOpThreads = session.Settings.ResolvedIntraOpThreads,
            Decoders = decoders,
            PrunedNodes = prepared.PrunedNodeCount,
            WeightStorage = prepared.WeightStorage,
            Precision = PreparedModel.Name(prepared.Precision),
            PrecisionConversion = prepared.Conversion,
            ConvertedModel = prepared.CachedAt,
            Int8Kernels = session.Int8Kernels is { IsEmpty: false } fused ? fused.ToString() : null,
            Warnings = warnings,
            DecodeScale = options.TensorsIn is null ? options.DecodeScale.ToString() : null,
            DecodedAtScale = options.TensorsIn is null ? preprocessor.DecodeScaleCounts.Snapshot() : null,
            ReducibleJpegs = preprocessor.DecodeScaleCounts.ReducibleByAuto,
            DecodeScaleAutoAdvised = options.TensorsIn is null && AutoDecodeScaleAdvised(options.DecodeScale, preprocessor.DecodeScaleCounts.ReducibleByAuto, summary.Extracted,
                decodeTicks, inferenceTicks + (long)(stage.WriteSeconds * Stopwatch.Frequency)),
        };
        stage.WriteSummary(result);
        return result;
    }

    /// <summary>Exact decode was in force, decoding (busy time summed over workers) outweighed inference and writing
    /// together, and a quarter or more of the images were JPEGs that auto would have reduced.</summary>
    internal static bool AutoDecodeScaleAdvised(DecodeScale scale, long reducibleJpegs, long extracted, long decodeBusy, long otherBusy) =>
        scale.Mode == DecodeScaleMode.Exact && decodeBusy > otherBusy && extracted > 0 && reducibleJpegs * 4 >= extracted;

    /// <summary>int8's calibration images: those asked for, else the run's own first ones, which is said in a warning (never quantised silently).</summary>
    private static ImageCalibrator Calibrator(ExtractionOptions options, ModelManifest manifest, List<string> warnings)
    {
        if (options.CalibrationInputs is not { Count: > 0 } && options.TensorsIn is not null)
            throw new ArgumentException("precision int8 with tensors in needs calibration images: name a folder of images like the inputs.");
        return ImageCalibrator.ForRun(manifest, options.CalibrationInputs, options.Inputs, "the run's own input", options.Calibration, options.Session.IntraOpThreads, warnings);
    }

    private static InputListing TensorListing(string path, ModelManifest manifest)
    {
        using var stream = File.OpenRead(path);
        var info = NpyFormat.ReadHeader(stream, path);
        long[] expected = [.. manifest.Input.Shape.Select(d => (long)d)];
        if (info.DType != "<f4" || info.FortranOrder || info.Shape.Length != expected.Length + 1 || !info.Shape[1..].SequenceEqual(expected))
            throw new InvalidDataException($"{path}: ExtractionOptions.TensorsIn needs float32 C-order [N,{string.Join(",", expected)}] (the model input '{manifest.Input.Name}'); found {info.DType} [{string.Join(",", info.Shape)}].");
        var items = Enumerable.Range(0, (int)info.Shape[0]).Select(i => new InputItem($"{path}#{i}", path, i)).ToList();
        return new InputListing(items, [], 0);
    }

    private static void ReadTensorRows(string path, InputItem[] chunk, byte[] buffer, int slotBytes)
    {
        using var stream = File.OpenRead(path);
        var info = NpyFormat.ReadHeader(stream, path);
        for (var i = 0; i < chunk.Length; i++)
        {
            stream.Position = info.DataOffset + chunk[i].Offset * slotBytes;
            stream.ReadExactly(buffer.AsSpan(i * slotBytes, slotBytes));
        }
    }

    /// <summary>What the run was asked to do; a resumed run must match it.</summary>
    private static Dictionary<string, string> JobDescription(ExtractionOptions o, ModelManifest manifest, IReadOnlyList<string> outputs, ModelPrecision precision)
    {
        var job = OutputStage.Job(manifest.ManifestPath ?? manifest.Name, outputs, o.Inputs, o.Shard, o.MaxPixels, o.MaxFileBytes, o.PostProcess);
        job["tensorsIn"] = o.TensorsIn is null ? "" : Path.GetFullPath(o.TensorsIn);
        // Scaled decodes change the rows; no key for exact, so that journals written before the option still resume.
        if (o.DecodeScale.Mode != DecodeScaleMode.Exact) job["decodeScale"] = o.DecodeScale.ToString();
        if (precision != ModelPrecision.Fp32) job["precision"] = PreparedModel.Name(precision); // absent for fp32: older job.json files still resume
        return job;
    }

    /// <summary>One input into its slot: a uint8 crop, or normalised float32 values (the slot's bytes). Returns why it failed, or null.</summary>
    private string? DecodeInto(ImagePreprocessor preprocessor, InputItem item, Span<byte> slot, bool uint8, long maxFileBytes)
    {
        if (InputSelection.Read(item, maxFileBytes, ReadInput, out var unreadable) is not { } bytes) return unreadable;
        return CropInto(preprocessor, bytes, slot, uint8);
    }

    /// <summary>One read input into its slot (uint8 crop or float32 values); returns why it failed, or null.</summary>
    internal static string? CropInto(ImagePreprocessor preprocessor, byte[] bytes, Span<byte> slot, bool uint8)
    {
        try
        {
            if (uint8) preprocessor.Crop(bytes, slot);
            else preprocessor.Preprocess(bytes, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(slot));
            return null;
        }
        catch (Exception e)
        {
            return DecodeFailure(e, bytes.Length);
        }
    }

    /// <summary>The errors.csv reason for an input that was read but could not be decoded.</summary>
    internal static string DecodeFailure(Exception e, long fileBytes) => e switch
    {
        ImageDecodeException => e.Message,
        // One input too big for the memory left must not end a run over millions.
        OutOfMemoryException => $"out of memory decoding it ({InputFile.Human(fileBytes)} file)",
        // A decoder bug on one hostile file must not end a run over millions.
        _ => $"decoder failure ({e.GetType().Name}): {e.Message}",
    };

    /// <summary>A batch for the consumer: slots in <see cref="Buffer"/>, or in device memory at <see cref="DeviceSlots"/> (GPU decoder) when not 0.</summary>
    internal sealed record DecodedBatch(byte[] Buffer, IReadOnlyList<InputItem> Items, IReadOnlyList<InputProblem> Failed, nint DeviceSlots = 0);
}
