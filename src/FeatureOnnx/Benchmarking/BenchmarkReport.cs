namespace FeatureOnnx.Benchmarking;

/// <summary>A provider that was asked for and not measured (at any batch size, or at <see cref="BatchSize"/>).</summary>
/// <param name="Provider">As asked, e.g. <c>cuda:0</c>.</param>
/// <param name="Reason">Why it could not run, with the fix (from <see cref="Runtime.ProviderDiagnostics"/> or ONNX Runtime).</param>
public sealed record SkippedProvider(string Provider, string Reason)
{
    /// <summary>The batch size that failed; null when the provider could not run at all.</summary>
    public int? BatchSize { get; init; }

    /// <summary>With <see cref="BatchSize"/>: the input path that failed (<c>run</c>, <c>bound</c>, <c>uint8</c>).</summary>
    public string? InputPath { get; init; }

    /// <summary>With <see cref="BatchSize"/>: the precision that failed (fp32, fp16).</summary>
    public string? Precision { get; init; }
}

/// <summary>One provider, input path and batch size.</summary>
public sealed record BenchmarkResult
{
    /// <summary>The provider, e.g. <c>cpu</c> or <c>cuda:0</c>.</summary>
    public required string Provider { get; init; }

    /// <summary>
    /// How the batch was fed (<see cref="BenchmarkInputPath"/>): <c>run</c> (FeatureSession.Run, float32),
    /// <c>bound</c> (RunBound, float32), <c>uint8</c> (RunBound, uint8 crops normalised in the graph) or <c>device</c>
    /// (a ResidentBatch: input and outputs kept in the provider's memory). Reports from before input paths existed read as <c>run</c>.
    /// </summary>
    public string InputPath { get => _inputPath ?? "run"; init => _inputPath = value; }

    // The source-generated JSON reader sets a property missing from the file to null rather than keep its initialiser.
    private readonly string? _inputPath;

    /// <summary>The precision the graph ran at: fp32 or fp16. Reports from before precisions existed read as fp32.</summary>
    public string Precision { get => _precision ?? "fp32"; init => _precision = value; }

    private readonly string? _precision;

    /// <summary>
    /// For int8 on the CPU: which activations ran on FeatureOnnx's kernels (<see cref="Runtime.SessionSettings.Int8ActivationKernels"/>),
    /// e.g. "uint8 SiLU x49, squeeze-excitation gates x16 on ..."; null where ONNX Runtime ran every operator.
    /// </summary>
    public string? Int8Kernels { get; init; }

    /// <summary>Where the bound input buffer lived (CUDA pinned, CUDA device or plain host memory); null for <c>run</c>.</summary>
    public string? BoundInputMemory { get; init; }

    /// <summary>Images per run.</summary>
    public required int BatchSize { get; init; }

    /// <summary>Session creation (graph optimisation, provider setup, weights to the device), in milliseconds.</summary>
    public required double SessionCreationMs { get; init; }

    /// <summary>The first run after creation (memory arena growth, cuDNN algorithm search), in milliseconds.</summary>
    public required double FirstRunMs { get; init; }

    /// <summary>Latency of each timed run: <c>FeatureSession.Run</c> or <c>RunBound</c> (<see cref="InputPath"/>), host input to host outputs; for <c>device</c>, <c>ResidentBatch.Run</c>, device to device.</summary>
    public required LatencySummary LatencyMs { get; init; }

    /// <summary>Batch size times timed runs, divided by their summed latency.</summary>
    public required double ImagesPerSecond { get; init; }

    /// <summary>Peak resident memory of the process during this configuration (VmHWM, reset when it started where the kernel allows), in bytes.</summary>
    public required long HostPeakBytes { get; init; }

    /// <summary><see cref="HostPeakBytes"/> minus the resident memory when this configuration started, in bytes.</summary>
    public required long HostPeakDeltaBytes { get; init; }

    /// <summary>Device memory in use after the timed runs (device-wide, cudaMemGetInfo), in bytes; null on the CPU or when it could not be read.</summary>
    public long? DeviceUsedBytes { get; init; }

    /// <summary>Device memory added by this session (arena, cuDNN/cuBLAS workspaces) since before it was created, in bytes; null as <see cref="DeviceUsedBytes"/>.</summary>
    public long? DeviceDeltaBytes { get; init; }

    /// <summary>Why device memory is not reported ("n/a on CPU", or the CUDA error).</summary>
    public string? DeviceMemoryNote { get; init; }

    /// <summary>What the outputs were compared with: the CPU provider's plain float32 run on the same inputs, or (for that configuration) its own first run.</summary>
    public required string AgreementReference { get; init; }

    /// <summary>Agreement of every output with <see cref="AgreementReference"/>.</summary>
    public required IReadOnlyList<OutputAgreement> Agreement { get; init; }
}

/// <summary>Machine the benchmark ran on.</summary>
/// <param name="Cores">Logical processors .NET sees.</param>
/// <param name="Cpu">CPU model (/proc/cpuinfo), or null.</param>
/// <param name="Os">Operating system.</param>
/// <param name="Gpu">CUDA device name when CUDA ran, or null.</param>
public sealed record BenchmarkMachine(int Cores, string? Cpu, string Os, string? Gpu);

/// <summary>What <see cref="ProviderBenchmark"/> measured; report.json is this record.</summary>
public sealed record BenchmarkReport
{
    /// <summary>"completed" or "interrupted" (results hold the configurations finished before).</summary>
    public required string Status { get; init; }

    /// <summary>Model name.</summary>
    public required string Model { get; init; }

    /// <summary>Manifest file, when there is one.</summary>
    public string? Manifest { get; init; }

    /// <summary>Outputs fetched on every run, in order.</summary>
    public required IReadOnlyList<string> Outputs { get; init; }

    /// <summary>Where the inputs came from.</summary>
    public required string Inputs { get; init; }

    /// <summary>True when the inputs were seeded random pixels, not images.</summary>
    public required bool RandomInputs { get; init; }

    /// <summary>Batch sizes, in the order run.</summary>
    public required IReadOnlyList<int> BatchSizes { get; init; }

    /// <summary>Input paths run for every provider and batch size, in the order run (reports from before paths existed: run).</summary>
    public IReadOnlyList<string> InputPaths { get => _inputPaths ?? ["run"]; init => _inputPaths = value; }

    // The source-generated JSON reader sets a property missing from the file to null rather than keep its initialiser.
    private readonly IReadOnlyList<string>? _inputPaths;

    /// <summary>Precisions run for every provider, in the order run; fp32 first, the reference (reports from before precisions existed: fp32).</summary>
    public IReadOnlyList<string> Precisions { get => _precisions ?? ["fp32"]; init => _precisions = value; }

    private readonly IReadOnlyList<string>? _precisions;

    /// <summary>Per converted precision, how it was converted (the typed list of rules applied).</summary>
    public IReadOnlyList<Models.PrecisionConversion> Conversions { get => _conversions ?? []; init => _conversions = value; }

    private readonly IReadOnlyList<Models.PrecisionConversion>? _conversions;

    /// <summary>Untimed runs before timing.</summary>
    public required int WarmupIterations { get; init; }

    /// <summary>Timed runs per configuration.</summary>
    public required int Iterations { get; init; }

    /// <summary>Graph optimisation level.</summary>
    public required string Optimization { get; init; }

    /// <summary>ONNX Runtime intra-op threads every session used (the cores this process may use, unless set).</summary>
    public required int IntraOpThreads { get; init; }

    /// <summary>CUDA provider options set (empty: ONNX Runtime's defaults).</summary>
    public required string CudaOptions { get; init; }

    /// <summary>ONNX Runtime version.</summary>
    public required string OrtVersion { get; init; }

    /// <summary>Where it ran.</summary>
    public required BenchmarkMachine Machine { get; init; }

    /// <summary>Providers asked for, in order.</summary>
    public required IReadOnlyList<string> Providers { get; init; }

    /// <summary>Providers not measured, with the reason.</summary>
    public required IReadOnlyList<SkippedProvider> Skipped { get; init; }

    /// <summary>One entry per provider, input path and batch size measured.</summary>
    public required IReadOnlyList<BenchmarkResult> Results { get; init; }

    /// <summary>Peak resident memory of the whole process over the benchmark, in bytes.</summary>
    public required long ProcessPeakBytes { get; init; }

    /// <summary>Whether the peak could be reset per configuration (Linux clear_refs); if not, per-configuration peaks are cumulative.</summary>
    public required bool PeakResetPerConfiguration { get; init; }

    /// <summary>UTC time the benchmark finished.</summary>
    public DateTime FinishedUtc { get; init; }

    /// <summary>FeatureOnnx version.</summary>
    public string Version { get; init; } = typeof(ProviderBenchmark).Assembly.GetName().Version?.ToString() ?? "";
}
