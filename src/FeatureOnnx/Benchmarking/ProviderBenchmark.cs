using System.Diagnostics;
using System.Runtime.InteropServices;
using FeatureOnnx.Cuda;
using FeatureOnnx.Models;
using FeatureOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Benchmarking;

/// <summary>An execution provider to benchmark: the CPU, or a CUDA device.</summary>
/// <param name="Kind">The provider.</param>
/// <param name="DeviceId">CUDA device ordinal (ignored for the CPU).</param>
public sealed record ProviderChoice(ExecutionProviderKind Kind, int DeviceId = 0)
{
    /// <summary>The CPU provider.</summary>
    public static ProviderChoice Cpu { get; } = new(ExecutionProviderKind.Cpu);

    /// <summary><c>cpu</c> or <c>cuda:N</c>.</summary>
    public override string ToString() => Kind == ExecutionProviderKind.Cpu ? "cpu" : $"cuda:{DeviceId}";
}

/// <summary>One precision of the model under test, as <see cref="ProviderBenchmark"/> runs it.</summary>
/// <param name="Model">The model with its float32 input, at its precision (<see cref="PreparedModel.Precision"/>).</param>
/// <param name="Uint8Model">The same model, precision and outputs prepared with <see cref="PrepareOptions.Uint8Input"/>; needed for <see cref="BenchmarkInputPath.Uint8"/>, else ignored.</param>
public sealed record BenchmarkModel(PreparedModel Model, PreparedModel? Uint8Model = null);

/// <summary>How a benchmark hands each batch to ONNX Runtime.</summary>
public enum BenchmarkInputPath
{
    /// <summary>
    /// <see cref="FeatureSession.Run"/> with float32: the caller's batch wrapped as a tensor in pageable host memory
    /// (on CUDA, ONNX Runtime copies it to the device on every run).
    /// </summary>
    Run,
    /// <summary>
    /// <see cref="FeatureSession.RunBound"/> with float32: the batch copied into a reusable input buffer bound through
    /// an IOBinding (CUDA pinned host memory on CUDA), as <c>extract --uint8-input off</c> runs.
    /// </summary>
    Bound,
    /// <summary>
    /// <see cref="FeatureSession.RunBound"/> with uint8 HWC crops into a model prepared with
    /// <see cref="PrepareOptions.Uint8Input"/> (normalised inside the graph; a quarter of the bytes to copy), as
    /// <c>extract --uint8-input on</c> runs.
    /// </summary>
    Uint8,
    /// <summary>
    /// <see cref="FeatureSession.CreateResident"/> with float32: the batch copied to the device once, before timing,
    /// and outputs left in device buffers of their own (read back once, for the agreement); each timed run moves no
    /// bytes between host and device. Inference alone, as PyTorch's figures with the input already on the GPU; the
    /// fixed addresses are what <c>--cuda-options enable_cuda_graph=1</c> needs. On the CPU, "device" is host memory.
    /// </summary>
    Device,
}

/// <summary>Options for <see cref="ProviderBenchmark"/>. Every default is documented; they suit a small CPU machine.</summary>
public sealed record BenchmarkOptions
{
    /// <summary>Providers to compare. Default: cpu and cuda:0 (CUDA is skipped, with the reason, where it cannot load).</summary>
    public IReadOnlyList<ProviderChoice> Providers { get; init; } = [ProviderChoice.Cpu, new(ExecutionProviderKind.Cuda)];

    /// <summary>Batch sizes, each run with a session of its own. Default: 1, 8, 32 (256 takes minutes per configuration on a few CPU cores).</summary>
    public IReadOnlyList<int> BatchSizes { get; init; } = [1, 8, 32];

    /// <summary>
    /// How batches are fed; every provider and batch size runs each, in the order run, bound, uint8, device. Default: run
    /// alone. <see cref="BenchmarkInputPath.Uint8"/> needs the model prepared with <see cref="PrepareOptions.Uint8Input"/>.
    /// </summary>
    public IReadOnlyList<BenchmarkInputPath> InputPaths { get; init; } = [BenchmarkInputPath.Run];

    /// <summary>Untimed runs before timing; the first run (or, with none, the first timed one) is also reported as <see cref="BenchmarkResult.FirstRunMs"/>. Default 5.</summary>
    public int WarmupIterations { get; init; } = 5;

    /// <summary>Timed runs per provider and batch size. Default 20 (the GPU runs use 50).</summary>
    public int Iterations { get; init; } = 20;

    /// <summary>
    /// Threads, graph optimisation and CUDA options for every session. Its provider, device and fallback are ignored:
    /// each provider is created strictly (a fallback would label CPU figures as another provider's).
    /// </summary>
    public SessionSettings Session { get; init; } = new();
}

/// <summary>What a benchmark is doing.</summary>
public enum BenchmarkStage
{
    /// <summary>A provider (or one batch size of it) cannot run; <see cref="BenchmarkProgress.Reason"/> says why.</summary>
    Skipped,
    /// <summary>Creating the session.</summary>
    CreatingSession,
    /// <summary>Untimed runs (the first one included).</summary>
    WarmingUp,
    /// <summary>Timed runs.</summary>
    Timing,
    /// <summary>A configuration is done; <see cref="BenchmarkProgress.Result"/> holds it.</summary>
    Finished,
}

/// <summary>Progress of a benchmark, reported at every stage and run.</summary>
/// <param name="Provider">The provider, e.g. <c>cuda:0</c>.</param>
/// <param name="BatchSize">The batch size (0 when a whole provider is skipped).</param>
/// <param name="Stage">What is happening.</param>
/// <param name="Done">Runs done in this configuration (warm-up included).</param>
/// <param name="Total">Runs in this configuration.</param>
public sealed record BenchmarkProgress(string Provider, int BatchSize, BenchmarkStage Stage, int Done, int Total)
{
    /// <summary>The input path (<c>run</c>, <c>bound</c>, <c>uint8</c>); null when a whole provider is skipped.</summary>
    public string? InputPath { get; init; }

    /// <summary>The precision being run (fp32, fp16); null when a whole provider is skipped.</summary>
    public string? Precision { get; init; }

    /// <summary>With <see cref="BenchmarkStage.Finished"/>: the configuration's figures.</summary>
    public BenchmarkResult? Result { get; init; }

    /// <summary>With <see cref="BenchmarkStage.Skipped"/>: why.</summary>
    public string? Reason { get; init; }
}

/// <summary>
/// Compares execution providers on one model: for every batch size, provider and input path, a fresh session is
/// created and timed, warmed up, then run <see cref="BenchmarkOptions.Iterations"/> times on the same inputs; each
/// run's latency is <see cref="FeatureSession.Run"/> or <see cref="FeatureSession.RunBound"/> (as the
/// <see cref="BenchmarkInputPath"/> says) from host input to host outputs. Every output is compared with the CPU
/// provider's plain float32 <see cref="FeatureSession.Run"/> on the same batch (that configuration itself with its
/// own first run: run-to-run determinism). Host memory is the
/// process's peak resident size per configuration; device memory is read from the CUDA runtime.
/// A provider that cannot load is skipped with the reason, never replaced.
/// </summary>
public sealed class ProviderBenchmark
{
    /// <summary>Runs the benchmark with float32 paths only (<see cref="BenchmarkInputPath.Uint8"/> needs the other overload).</summary>
    /// <exception cref="ArgumentException">Bad options, or inputs that do not fit the model.</exception>
    public BenchmarkReport Run(PreparedModel model, BenchmarkInputs inputs, BenchmarkOptions options, IProgress<BenchmarkProgress>? progress = null, CancellationToken cancellation = default) =>
        Run(model, null, inputs, options, progress, cancellation);

    /// <summary>Runs the benchmark. Cancelling stops between runs and returns what was finished (status "interrupted").</summary>
    /// <param name="model">The model with its float32 input (the run and bound paths, and the reference).</param>
    /// <param name="uint8Model">The same model and outputs prepared with <see cref="PrepareOptions.Uint8Input"/>; needed for <see cref="BenchmarkInputPath.Uint8"/>, else ignored.</param>
    /// <param name="inputs">The images or random crops.</param>
    /// <param name="options">What to run.</param>
    /// <param name="progress">Told at every stage and run.</param>
    /// <param name="cancellation">Stops between runs.</param>
    /// <exception cref="ArgumentException">Bad options, or inputs or models that do not fit each other.</exception>
    public BenchmarkReport Run(PreparedModel model, PreparedModel? uint8Model, BenchmarkInputs inputs, BenchmarkOptions options, IProgress<BenchmarkProgress>? progress = null, CancellationToken cancellation = default) =>
        Run([new BenchmarkModel(model, uint8Model)], inputs, options, progress, cancellation);

    /// <summary>
    /// Runs the benchmark for each precision of <paramref name="models"/>, as an axis like providers: every row carries
    /// its precision and is compared with the CPU's fp32 run. Cancelling stops between runs and returns what was finished.
    /// </summary>
    /// <param name="models">The model at each precision; the first is the reference (fp32 when there are several).</param>
    /// <param name="inputs">The images or random crops.</param>
    /// <param name="options">What to run.</param>
    /// <param name="progress">Told at every stage and run.</param>
    /// <param name="cancellation">Stops between runs.</param>
    /// <exception cref="ArgumentException">Bad options, several models and the first not fp32, or inputs or models that do not fit each other.</exception>
    public BenchmarkReport Run(IReadOnlyList<BenchmarkModel> models, BenchmarkInputs inputs, BenchmarkOptions options, IProgress<BenchmarkProgress>? progress = null, CancellationToken cancellation = default)
    {
        Validate(options);
        if (models.Count == 0) throw new ArgumentException("name at least one model.");
        var model = models[0].Model;
        if (models.Count > 1 && model.Precision != ModelPrecision.Fp32)
            throw new ArgumentException($"the first model is the reference and must be fp32 when precisions are compared (it is {PreparedModel.Name(model.Precision)}).");
        if (models.Select(m => m.Model.Precision).Distinct().Count() != models.Count) throw new ArgumentException("a precision is listed twice.");
        var slot = (int)model.Manifest.Input.Shape.Aggregate(1L, (a, b) => a * b);
        if (inputs.SlotLength != slot)
            throw new ArgumentException($"the inputs hold {inputs.SlotLength} floats per image; model '{model.Manifest.Name}' takes {slot}.");
        var paths = options.InputPaths.Order().ToList(); // run first: the CPU's plain run is the reference
        var crops = paths.Contains(BenchmarkInputPath.Uint8);
        foreach (var (m, uint8Model) in models)
        {
            if (m.Uint8Input) throw new ArgumentException($"model '{m.Manifest.Name}' takes uint8 crops; pass the float32-input model (the uint8 one second).");
            if (!m.Outputs.Select(o => o.Name).SequenceEqual(model.Outputs.Select(o => o.Name)))
                throw new ArgumentException($"the {PreparedModel.Name(m.Precision)} model's outputs differ from the fp32 model's.");
            if (!crops) continue;
            if (uint8Model is not { Uint8Input: true })
                throw new ArgumentException("the uint8 input path needs the model prepared with PrepareOptions.Uint8Input.");
            if (uint8Model.Precision != m.Precision)
                throw new ArgumentException($"the uint8 model is {PreparedModel.Name(uint8Model.Precision)}; its float32-input model is {PreparedModel.Name(m.Precision)}.");
            if (!uint8Model.Outputs.Select(o => o.Name).SequenceEqual(model.Outputs.Select(o => o.Name)))
                throw new ArgumentException("the uint8 model's outputs differ from the float32 model's.");
            if (uint8Model.InputSlotShape.Aggregate(1L, (a, b) => a * b) != inputs.CropLength)
                throw new ArgumentException($"the inputs hold {inputs.CropLength} bytes per crop; the uint8 model takes {uint8Model.InputSlotShape.Aggregate(1L, (a, b) => a * b)}.");
        }

        var processPeak = ProcessMemory.PeakBytes();
        var peakResets = ProcessMemory.TryResetPeak();
        var skipped = new List<SkippedProvider>();
        var runnable = new List<ProviderChoice>();
        foreach (var provider in options.Providers)
        {
            var reason = provider.Kind == ExecutionProviderKind.Cuda ? CudaUnavailable(provider.DeviceId) : null;
            if (reason is null) { runnable.Add(provider); continue; }
            skipped.Add(new SkippedProvider(provider.ToString(), reason));
            progress?.Report(new BenchmarkProgress(provider.ToString(), 0, BenchmarkStage.Skipped, 0, 0) { Reason = reason });
        }
        // The CPU goes first at each batch size: its outputs are the reference the others are compared with.
        runnable = runnable.OrderBy(p => p.Kind == ExecutionProviderKind.Cpu ? 0 : 1).ToList();
        string? gpuName = null;
        CudaRuntime? cuda = null;
        var cudaNote = "";
        if (runnable.Any(p => p.Kind == ExecutionProviderKind.Cuda))
        {
            cuda = CudaRuntime.TryLoad(out cudaNote);
            var device = runnable.First(p => p.Kind == ExecutionProviderKind.Cuda).DeviceId;
            gpuName = CudaDriver.TryLoad(out _)?.Devices(out _, out _)?.FirstOrDefault(d => d.Ordinal == device)?.Name;
        }

        var results = new List<BenchmarkResult>();
        var status = "completed";
        FeatureSession? referenceSession = null;
        try
        {
            foreach (var batch in options.BatchSizes)
            {
                var batchInputs = new BatchInputs(new float[(long)batch * slot], crops ? new byte[(long)batch * inputs.CropLength] : null, batch);
                inputs.Fill(batchInputs.Floats, batch);
                if (batchInputs.Crops is { } c) inputs.FillCrops(c, batch);
                Outputs? reference = null;
                foreach (var provider in runnable)
                foreach (var set in models)
                {
                    foreach (var path in paths)
                    {
                        if (skipped.Any(s => s.Provider == provider.ToString() && s.BatchSize is null)) break;
                        var isReference = provider.Kind == ExecutionProviderKind.Cpu && path == BenchmarkInputPath.Run && set == models[0];
                        if (!isReference && reference is null)
                        {
                            // The CPU's plain run did not run at this batch size: compute the reference with a CPU session of our own.
                            referenceSession ??= new FeatureSession(model, Strict(options.Session, ProviderChoice.Cpu));
                            using var outputs = referenceSession.Run(batchInputs.Floats, batch);
                            reference = Outputs.Copy(outputs, referenceSession.OutputNames);
                        }
                        try
                        {
                            var pathModel = path == BenchmarkInputPath.Uint8 ? set.Uint8Model! : set.Model;
                            var (result, last) = Measure(pathModel, provider, path, isReference, PreparedModel.Name(model.Precision), options, batchInputs, reference, cuda, cudaNote, progress, cancellation);
                            results.Add(result);
                            processPeak = Math.Max(processPeak, result.HostPeakBytes);
                            if (isReference) reference = last;
                            progress?.Report(new BenchmarkProgress(provider.ToString(), batch, BenchmarkStage.Finished, 0, 0) { InputPath = result.InputPath, Result = result });
                        }
                        catch (Exception e) when (e is ExecutionProviderException or OnnxRuntimeException
                                                  || (e is ArgumentException && path == BenchmarkInputPath.Device))
                        {
                            // A provider that loads but fails (bad option, out of device memory at this batch size), or a model whose
                            // outputs cannot be preallocated for the device path, is reported, not fatal.
                            var reason = e.Message.Split('\n')[0];
                            var cut = reason.IndexOf(" Set SessionSettings.FallbackToCpu", StringComparison.Ordinal);
                            var whole = e is ExecutionProviderException;
                            var entry = new SkippedProvider(provider.ToString(), cut > 0 ? reason[..cut] : reason)
                            {
                                BatchSize = whole ? null : batch,
                                InputPath = whole ? null : InputPathName(path),
                                Precision = whole ? null : PreparedModel.Name(set.Model.Precision),
                            };
                            skipped.Add(entry);
                            progress?.Report(new BenchmarkProgress(entry.Provider, entry.BatchSize ?? 0, BenchmarkStage.Skipped, 0, 0) { InputPath = entry.InputPath, Precision = entry.Precision, Reason = entry.Reason });
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            status = "interrupted";
        }
        finally
        {
            referenceSession?.Dispose();
        }

        var session = options.Session;
        return new BenchmarkReport
        {
            Status = status,
            Model = model.Manifest.Name,
            Manifest = model.Manifest.ManifestPath,
            Outputs = model.Outputs.Select(o => o.Name).ToList(),
            Inputs = inputs.Description,
            RandomInputs = inputs.IsRandom,
            BatchSizes = options.BatchSizes,
            InputPaths = paths.Select(InputPathName).ToList(),
            Precisions = models.Select(m => PreparedModel.Name(m.Model.Precision)).ToList(),
            Conversions = models.Select(m => m.Model.Conversion).OfType<PrecisionConversion>().ToList(),
            WarmupIterations = options.WarmupIterations,
            Iterations = options.Iterations,
            Optimization = GraphOptimization.Name(session.OptimizationLevel),
            IntraOpThreads = session.ResolvedIntraOpThreads,
            CudaOptions = session.Cuda.ToString(),
            OrtVersion = OrtEnv.Instance().GetVersionString(),
            Machine = new BenchmarkMachine(Environment.ProcessorCount, CpuModel(), RuntimeInformation.OSDescription, gpuName),
            Providers = options.Providers.Select(p => p.ToString()).ToList(),
            Skipped = skipped,
            Results = results,
            ProcessPeakBytes = Math.Max(processPeak, ProcessMemory.PeakBytes()),
            PeakResetPerConfiguration = peakResets,
            FinishedUtc = DateTime.UtcNow,
        };
    }

    /// <summary>The input path as the CLI and the report spell it: run, bound, uint8, device.</summary>
    public static string InputPathName(BenchmarkInputPath path) => path switch
    {
        BenchmarkInputPath.Run => "run",
        BenchmarkInputPath.Bound => "bound",
        BenchmarkInputPath.Uint8 => "uint8",
        BenchmarkInputPath.Device => "device",
        _ => path.ToString(),
    };

    private static void Validate(BenchmarkOptions options)
    {
        if (options.Providers.Count == 0) throw new ArgumentException("name at least one provider.");
        if (options.Providers.Distinct().Count() != options.Providers.Count) throw new ArgumentException("a provider is listed twice.");
        if (options.BatchSizes.Count == 0 || options.BatchSizes.Any(b => b <= 0)) throw new ArgumentException("batch sizes must be positive.");
        if (options.BatchSizes.Distinct().Count() != options.BatchSizes.Count) throw new ArgumentException("a batch size is listed twice.");
        if (options.WarmupIterations < 0) throw new ArgumentException("warm-up runs cannot be negative.");
        if (options.Iterations <= 0) throw new ArgumentException("at least one timed run.");
        if (options.InputPaths.Count == 0) throw new ArgumentException("name at least one input path.");
        if (options.InputPaths.Distinct().Count() != options.InputPaths.Count) throw new ArgumentException("an input path is listed twice.");
    }

    // No optimised-graph cache: every row's session creation is then the same work (the first CPU row would otherwise
    // pay for saving the graph and the others load it).
    private static SessionSettings Strict(SessionSettings settings, ProviderChoice provider) =>
        settings with { Provider = provider.Kind, DeviceId = provider.DeviceId, FallbackToCpu = false, OptimizedModelCache = null };

    /// <summary>Why CUDA cannot run on <paramref name="device"/>, from <see cref="ProviderDiagnostics"/>; null when it can.</summary>
    private static string? CudaUnavailable(int device)
    {
        var report = ProviderDiagnostics.Diagnose(device);
        return report.CudaUsable == true ? null : report.CudaError ?? "the CUDA provider could not be created.";
    }

    private static (BenchmarkResult Result, Outputs Last) Measure(
        PreparedModel model, ProviderChoice provider, BenchmarkInputPath path, bool isReference, string referencePrecision, BenchmarkOptions options, BatchInputs inputs, Outputs? reference,
        CudaRuntime? cuda, string cudaNote, IProgress<BenchmarkProgress>? progress, CancellationToken cancellation)
    {
        var name = provider.ToString();
        var pathName = InputPathName(path);
        var batch = inputs.Count;
        var isCpu = provider.Kind == ExecutionProviderKind.Cpu;
        // Garbage of the previous configuration must not count as this one's memory.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        ProcessMemory.TryResetPeak();
        var residentBefore = ProcessMemory.ResidentBytes();
        var deviceNote = isCpu ? "n/a on CPU" : cuda is null ? $"not measured: {cudaNote}" : null;
        var deviceBefore = isCpu || cuda is null ? null : cuda.Query(provider.DeviceId, out deviceNote);

        progress?.Report(new BenchmarkProgress(name, batch, BenchmarkStage.CreatingSession, 0, 0) { InputPath = pathName, Precision = PreparedModel.Name(model.Precision) });
        using var session = new FeatureSession(model, Strict(options.Session, provider));
        using var resident = path == BenchmarkInputPath.Device ? session.CreateResident(MemoryMarshal.AsBytes(inputs.Floats.AsSpan()), batch) : null;
        BatchOutputs? held = null; // the host paths' outputs of the run just timed
        Action runOnce = path switch
        {
            BenchmarkInputPath.Run => () => held = session.Run(inputs.Floats, batch),
            BenchmarkInputPath.Bound => () => held = session.RunBound(MemoryMarshal.AsBytes(inputs.Floats.AsSpan()), batch),
            BenchmarkInputPath.Uint8 => () => held = session.RunBound(inputs.Crops!, batch),
            _ => resident!.Run,
        };
        Outputs Copy() => resident is not null ? Outputs.From(resident.CopyOutputs()) : Outputs.Copy(held!, session.OutputNames);
        var total = options.WarmupIterations + options.Iterations;
        var latencies = new double[options.Iterations];
        Outputs? first = null, last = null;
        double firstRunMs = 0;
        for (var i = 0; i < total; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            var start = Stopwatch.GetTimestamp();
            double ms;
            try
            {
                runOnce();
                ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (i == 0)
                {
                    firstRunMs = ms;
                    if (isReference) first = Copy();
                }
                if (i == total - 1) last = Copy();
            }
            finally
            {
                held?.Dispose();
                held = null;
            }
            if (i >= options.WarmupIterations) latencies[i - options.WarmupIterations] = ms;
            var stage = i < options.WarmupIterations ? BenchmarkStage.WarmingUp : BenchmarkStage.Timing;
            progress?.Report(new BenchmarkProgress(name, batch, stage, i + 1, total) { InputPath = pathName });
        }

        (long Used, long Total)? deviceAfter = null;
        if (deviceBefore is not null) deviceAfter = cuda!.Query(provider.DeviceId, out deviceNote);
        var hostPeak = ProcessMemory.PeakBytes();
        var against = isReference ? first! : reference!;
        var agreement = session.OutputNames
            .Select(o => OutputAgreement.Compare(o, last![o].Shape, last[o].Values, against[o].Values, batch))
            .ToList();
        var result = new BenchmarkResult
        {
            Provider = name,
            InputPath = pathName,
            Precision = PreparedModel.Name(model.Precision),
            Int8Kernels = session.Int8Kernels is { IsEmpty: false } fused ? fused.ToString() : null,
            BoundInputMemory = resident?.Memory ?? session.BoundInputMemory,
            BatchSize = batch,
            SessionCreationMs = session.CreationTime.TotalMilliseconds,
            FirstRunMs = firstRunMs,
            LatencyMs = LatencySummary.From(latencies),
            ImagesPerSecond = (double)batch * options.Iterations / (latencies.Sum() / 1000),
            HostPeakBytes = hostPeak,
            HostPeakDeltaBytes = hostPeak - residentBefore,
            DeviceUsedBytes = deviceAfter?.Used,
            DeviceDeltaBytes = deviceAfter is { } after && deviceBefore is { } before ? after.Used - before.Used : null,
            DeviceMemoryNote = deviceAfter is null ? (string.IsNullOrEmpty(deviceNote) ? "not measured" : deviceNote) : null,
            AgreementReference = isReference
                ? (total == 1 ? "cpu run: its only run (nothing to compare)" : "cpu run: its own first run on the same inputs (run-to-run determinism)")
                : $"cpu run: the CPU provider's plain float32 Run of the {referencePrecision} model on the same inputs",
            Agreement = agreement,
        };
        return (result, last!);
    }

    private static string? CpuModel()
    {
        try
        {
            return File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>One batch of inputs: float32 slots (exactly <see cref="Count"/> of them) and, for the uint8 path, the crops.</summary>
    private sealed record BatchInputs(float[] Floats, byte[]? Crops, int Count);

    /// <summary>A run's outputs copied out of ONNX Runtime: name -> (shape, values).</summary>
    private sealed class Outputs : Dictionary<string, (long[] Shape, float[] Values)>
    {
        public static Outputs Copy(BatchOutputs outputs, IReadOnlyList<string> names)
        {
            var copy = new Outputs();
            foreach (var n in names) copy[n] = (outputs.Shape(n), outputs.Values(n).ToArray());
            return copy;
        }

        public static Outputs From(IReadOnlyDictionary<string, HostTensor> tensors)
        {
            var copy = new Outputs();
            foreach (var (n, t) in tensors) copy[n] = (t.Shape, t.Values);
            return copy;
        }
    }
}
