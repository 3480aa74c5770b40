using System.Diagnostics;
using FeatureOnnx.Models;
using Microsoft.ML.OnnxRuntime;
using OrtElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace FeatureOnnx.Runtime;

/// <summary>Which ONNX Runtime execution provider runs the model.</summary>
public enum ExecutionProviderKind
{
    /// <summary>ONNX Runtime's CPU provider (always available).</summary>
    Cpu,
    /// <summary>NVIDIA CUDA (needs the Gpu build of ONNX Runtime, CUDA 12/13 and cuDNN 9).</summary>
    Cuda,
}

/// <summary>Session settings. Every default is what we measured as best on CPU for CNN backbones.</summary>
public sealed record SessionSettings
{
    /// <summary>Execution provider. Default: CPU.</summary>
    public ExecutionProviderKind Provider { get; init; } = ExecutionProviderKind.Cpu;

    /// <summary>CUDA device ordinal. Default 0.</summary>
    public int DeviceId { get; init; }

    /// <summary>CUDA provider options (cuDNN algorithm search, NHWC, CUDA graph, memory limit, TF32). Default: ONNX Runtime's.</summary>
    public CudaProviderSettings Cuda { get; init; } = new();

    /// <summary>When the requested provider cannot be created, use the CPU instead (reported in <see cref="FeatureSession.Fallback"/>). Default: false, which fails loudly.</summary>
    public bool FallbackToCpu { get; init; }

    /// <summary>
    /// Threads inside one operator. Default 0: every core this process may run on (<see cref="UsableCores"/>), never
    /// ONNX Runtime's own default of one thread per physical core, which counts one thread on a 2-vCPU VM whose two
    /// vCPUs are hyper-threads of one core (49.8 against 92.8 img/s for resnet18 at batch 32 here).
    /// </summary>
    public int IntraOpThreads { get; init; }

    /// <summary>The intra-op thread count these settings give ONNX Runtime: <see cref="IntraOpThreads"/>, or
    /// <see cref="UsableCores"/> when it is 0.</summary>
    public int ResolvedIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : UsableCores;

    /// <summary>
    /// The cores this process may run on: .NET's <see cref="Environment.ProcessorCount"/>, which on Linux is the
    /// number of CPUs in the affinity mask (taskset, cpusets), capped by the cgroup CPU quota rounded up (a container's
    /// --cpus, a Kubernetes CPU limit), and which DOTNET_PROCESSOR_COUNT overrides.
    /// </summary>
    public static int UsableCores => Environment.ProcessorCount;

    /// <summary>
    /// Let ONNX Runtime's idle intra-op threads spin between operators (lower latency when they have the cores to
    /// themselves). Default null: spin, except in the extraction pipeline while decode threads share the CPU with
    /// inference, where the cycles are better spent decoding (measured in docs/benchmarks.md).
    /// </summary>
    public bool? AllowSpinning { get; init; }

    /// <summary>Graph optimisation level. Default: all (constant folding, fusions, layout changes).</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>
    /// Folder where CPU sessions keep the graph as ONNX Runtime optimised it, so that the next session of the same
    /// model skips the optimisation (0.6 of the 0.8 s it takes to create a ResNet18 session here). Entries are keyed by
    /// the model's bytes, the optimisation level, ONNX Runtime's version and the CPU (the layout transforms of level
    /// all are specific to its vector width), and give bit-identical outputs. Null: no cache. Default:
    /// <c>$XDG_CACHE_HOME/featureonnx/ort</c> (<c>~/.cache/featureonnx/ort</c>); not used for CUDA sessions.
    /// </summary>
    public string? OptimizedModelCache { get; init; } = Path.Combine(Models.ConversionCache.UserDirectory(), "ort");

    /// <summary>
    /// For int8 models on the CPU: run uint8 SiLU and squeeze-excitation gating on FeatureOnnx's own kernels
    /// (<see cref="Int8Kernels.ActivationFusion"/>) instead of ONNX Runtime's QLinearSigmoid + QLinearMul, which take two
    /// passes per SiLU and run broadcast multiplies element by element (efficientnet_b0 int8: 1.2x its fp32 with
    /// ONNX Runtime's kernels, 2.1x with ours, see docs/benchmarks.md). Used where the CPU has AVX2 (AVX-512 VBMI
    /// vectorises the SiLU table too) and the optimisation level is all; <see cref="FeatureSession.Int8Kernels"/> says
    /// what ran. Default: true.
    /// </summary>
    public bool Int8ActivationKernels { get; init; } = true;
}

/// <summary>A batch's outputs, owned by ONNX Runtime until disposed. Read them, then dispose.</summary>
public sealed class BatchOutputs : IDisposable
{
    private readonly IDisposableReadOnlyCollection<OrtValue> _values;
    private readonly Dictionary<string, int> _index;

    internal BatchOutputs(IDisposableReadOnlyCollection<OrtValue> values, IReadOnlyList<string> names)
    {
        _values = values;
        _index = names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i);
    }

    /// <summary>Shape of an output, batch axis first.</summary>
    public long[] Shape(string name) => _values[_index[name]].GetTensorTypeAndShape().Shape;

    /// <summary>The output's values, row-major.</summary>
    public ReadOnlySpan<float> Values(string name) => _values[_index[name]].GetTensorDataAsSpan<float>();

    /// <inheritdoc />
    public void Dispose() => _values.Dispose();
}

/// <summary>
/// An ONNX Runtime session over a <see cref="PreparedModel"/>: one image input (float32 normalised tensors, or uint8
/// crops when <see cref="PreparedModel.Uint8Input"/>), the requested named outputs. <see cref="RunBound"/> runs
/// through an IOBinding with a reusable input buffer; <see cref="Run"/> wraps the caller's floats directly.
/// Owns every native handle it creates and frees them on <see cref="Dispose"/>. One run at a time.
/// </summary>
public sealed class FeatureSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly long[] _inputShapeTail;
    private SessionBinding? _binding;
    private DeviceInputBinding? _deviceBinding;

    /// <summary>Creates a session. Strict: a provider that cannot load is an error unless <see cref="SessionSettings.FallbackToCpu"/>.</summary>
    /// <exception cref="ExecutionProviderException">The provider could not be created.</exception>
    public FeatureSession(PreparedModel model, SessionSettings? settings = null)
    {
        Settings = settings ?? new SessionSettings();
        var sw = Stopwatch.StartNew();
        try
        {
            (_session, Provider, Fallback) = CreateSession(model.OnnxBytes, Settings, int8: model.Precision == ModelPrecision.Int8, fused: out var fused);
            Int8Kernels = fused;
        }
        catch (OnnxRuntimeException e) when (model.Precision == ModelPrecision.Fp16)
        {
            var hint = Settings.Provider == ExecutionProviderKind.Cuda ? "Run it at precision fp32." : "Run it on the CUDA provider, or at precision fp32.";
            throw new ExecutionProviderException(
                $"model '{model.Manifest.Name}' computes in float16 (precision fp16) and ONNX Runtime cannot load it on the {Settings.Provider.ToString().ToLowerInvariant()} provider: {e.Message.Split('\n')[0]} {hint}", e);
        }
        CreationTime = sw.Elapsed;
        Model = model;
        _inputNames = [model.InputName];
        _outputNames = model.Outputs.Select(o => o.Name).ToArray();
        _inputShapeTail = model.InputSlotShape.Select(d => (long)d).ToArray();
        var missing = _outputNames.Where(n => !_session.OutputMetadata.ContainsKey(n)).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"the prepared graph lacks outputs {string.Join(", ", missing)}");
    }

    /// <summary>Session options from the settings (optimisation level, threads: <see cref="SessionSettings.ResolvedIntraOpThreads"/>); providers are added by <see cref="AppendProvider"/>.</summary>
    internal static SessionOptions NewOptions(SessionSettings settings)
    {
        var o = new SessionOptions
        {
            GraphOptimizationLevel = settings.OptimizationLevel,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = settings.ResolvedIntraOpThreads,
        };
        if (settings.AllowSpinning == false) o.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return o;
    }

    /// <summary>
    /// Creates an ONNX Runtime session on the provider the settings ask for. Strict: a CUDA provider that cannot be
    /// created, or whose session fails to start (no device, driver too old, device busy, cuDNN broken), is an
    /// <see cref="ExecutionProviderException"/> naming the cause, unless <see cref="SessionSettings.FallbackToCpu"/>:
    /// then the session runs on the CPU and the third value says why. <paramref name="configure"/> adds what the
    /// caller needs (custom operators, log level) to both attempts.
    /// </summary>
    /// <exception cref="ExecutionProviderException">CUDA was asked for, could not run, and no fallback was allowed.</exception>
    internal static (InferenceSession Session, ExecutionProviderKind Provider, string? Fallback) CreateSession(
        byte[] model, SessionSettings settings, Action<SessionOptions>? configure = null) =>
        CreateSession(model, settings, int8: false, out _, configure);

    /// <inheritdoc cref="CreateSession(byte[], SessionSettings, Action{SessionOptions}?)"/>
    /// <param name="model">The ONNX model's bytes.</param>
    /// <param name="settings">Provider, threads, optimisation, cache.</param>
    /// <param name="int8">The model is int8: on the CPU, put <see cref="SessionSettings.Int8ActivationKernels"/> to work.</param>
    /// <param name="fused">What the int8 rewrite replaced; null when it did not run.</param>
    /// <param name="configure">Adds what the caller needs (custom operators, log level); such sessions skip the optimised-graph cache.</param>
    internal static (InferenceSession Session, ExecutionProviderKind Provider, string? Fallback) CreateSession(
        byte[] model, SessionSettings settings, bool int8, out Int8Kernels.ActivationFusionCount? fused, Action<SessionOptions>? configure = null)
    {
        fused = null;
        string reason;
        using (var options = NewOptions(settings))
        {
            configure?.Invoke(options);
            var (provider, fallback) = AppendProvider(options, settings);
            if (provider != ExecutionProviderKind.Cuda)
                return (configure is null ? OptimizedModelCache.CreateCpuSession(model, options, settings, int8, out fused) : new InferenceSession(model, options), provider, fallback);
            try
            {
                return (new InferenceSession(model, options), provider, null);
            }
            catch (OnnxRuntimeException e) when (ExecutionProviderException.IsCudaFailure(e))
            {
                reason = ExecutionProviderException.Explain(e);
                if (!settings.FallbackToCpu)
                    throw new ExecutionProviderException($"CUDA execution provider could not start a session: {reason} Set SessionSettings.FallbackToCpu to run on the CPU instead.", e);
            }
        }
        using var cpu = NewOptions(settings);
        configure?.Invoke(cpu);
        return (configure is null ? OptimizedModelCache.CreateCpuSession(model, cpu, settings, int8, out fused) : new InferenceSession(model, cpu), ExecutionProviderKind.Cpu, FallbackMessage(reason));
    }

    /// <summary>
    /// Adds the requested execution provider to <paramref name="options"/>. Strict: a provider that cannot be created
    /// is an error unless <see cref="SessionSettings.FallbackToCpu"/>, in which case the second value says why.
    /// </summary>
    /// <exception cref="ExecutionProviderException">The provider could not be created.</exception>
    private static (ExecutionProviderKind Provider, string? Fallback) AppendProvider(SessionOptions options, SessionSettings settings)
    {
        if (settings.Provider != ExecutionProviderKind.Cuda) return (ExecutionProviderKind.Cpu, null);
        // Ask the driver first: ONNX Runtime's own error only says "Failed to load shared library" or "CUDA failure 100".
        var reason = ProviderDiagnostics.WhyCudaCannotRun(settings.DeviceId);
        if (reason is null)
        {
            try
            {
                AppendCuda(options, settings);
                return (ExecutionProviderKind.Cuda, null);
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                reason = ExecutionProviderException.Explain(e);
            }
        }
        if (!settings.FallbackToCpu)
            throw new ExecutionProviderException($"CUDA execution provider could not be created: {reason} Set SessionSettings.FallbackToCpu to run on the CPU instead.");
        return (ExecutionProviderKind.Cpu, FallbackMessage(reason));
    }

    /// <summary>Appends ONNX Runtime's CUDA provider with the settings' device and CUDA options, unchecked.</summary>
    internal static void AppendCuda(SessionOptions options, SessionSettings settings)
    {
        using var cuda = new OrtCUDAProviderOptions();
        cuda.UpdateOptions(settings.Cuda.ToProviderOptions(settings.DeviceId));
        options.AppendExecutionProvider_CUDA(cuda);
    }

    private static string FallbackMessage(string reason) => $"CUDA unavailable ({reason}); running on the CPU as SessionSettings.FallbackToCpu asked.";

    /// <summary>The settings asked for.</summary>
    public SessionSettings Settings { get; }

    /// <summary>The provider actually running the model.</summary>
    public ExecutionProviderKind Provider { get; }

    /// <summary>Set when the requested provider was replaced by the CPU; says why.</summary>
    public string? Fallback { get; }

    /// <summary>Time spent creating the session (graph optimisation included).</summary>
    public TimeSpan CreationTime { get; }

    /// <summary>The model being run.</summary>
    public PreparedModel Model { get; }

    /// <summary>
    /// For an int8 model on the CPU, which activations run on FeatureOnnx's kernels
    /// (<see cref="SessionSettings.Int8ActivationKernels"/>); null where that rewrite did not run (other precisions,
    /// CUDA, a CPU without AVX2, the setting off).
    /// </summary>
    public Int8Kernels.ActivationFusionCount? Int8Kernels { get; }

    /// <summary>Output names, in request order.</summary>
    public IReadOnlyList<string> OutputNames => _outputNames;

    /// <summary>Elements per input slot (floats, or bytes when <see cref="PreparedModel.Uint8Input"/>).</summary>
    public int SlotLength => (int)_inputShapeTail.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes per input slot: <see cref="SlotLength"/> times 4 for float32, times 1 for uint8 crops.</summary>
    public int SlotBytes => SlotLength * (Model.Uint8Input ? 1 : sizeof(float));

    /// <summary>Where <see cref="RunBound"/>'s input buffer lives (CUDA pinned or plain host memory); null before the first bound run.</summary>
    public string? BoundInputMemory => _binding?.InputMemory;

    /// <summary>Runs <paramref name="count"/> images held in the first <c>count * SlotLength</c> floats of <paramref name="batch"/>.</summary>
    /// <exception cref="InvalidOperationException">The model takes uint8 crops; use <see cref="RunBound"/>.</exception>
    public BatchOutputs Run(float[] batch, int count)
    {
        if (Model.Uint8Input) throw new InvalidOperationException("this model takes uint8 crops (PrepareOptions.Uint8Input); feed them with RunBound.");
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count));
        var length = count * SlotLength;
        if (batch.Length < length) throw new ArgumentException("batch buffer too small", nameof(batch));
        long[] shape = [count, .. _inputShapeTail];
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.AsMemory(0, length), shape);
        var outputs = _session.Run(_runOptions, _inputNames, [input], _outputNames);
        return new BatchOutputs(outputs, _outputNames);
    }

    /// <summary>
    /// Runs <paramref name="count"/> images whose input slots (float32 tensors, or HWC uint8 crops when
    /// <see cref="PreparedModel.Uint8Input"/>) are the first <c>count * SlotBytes</c> bytes of <paramref name="slots"/>,
    /// through an IOBinding: the slots are copied into a reusable input buffer (CUDA pinned host memory on CUDA) that
    /// stays bound between runs, and the outputs come back in host memory. Same values as <see cref="Run"/>.
    /// </summary>
    public BatchOutputs RunBound(ReadOnlySpan<byte> slots, int count)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (slots.Length < (long)count * SlotBytes) throw new ArgumentException("batch buffer too small", nameof(slots));
        _binding ??= new SessionBinding(_session, Provider, Settings.DeviceId, _inputNames[0], _inputShapeTail,
            Model.Uint8Input ? OrtElementType.UInt8 : OrtElementType.Float, _outputNames);
        return new BatchOutputs(_binding.Run(_runOptions, slots, count), _outputNames);
    }

    /// <summary>
    /// Runs <paramref name="count"/> input slots that are already in CUDA device memory at <paramref name="devicePointer"/>
    /// (as <see cref="RunBound"/> lays them out: the GPU decoder's uint8 crops), bound without a copy; the outputs come
    /// back in host memory. The caller has finished writing the slots (its stream synchronised) before calling.
    /// </summary>
    /// <exception cref="InvalidOperationException">The session does not run on the CUDA provider.</exception>
    public BatchOutputs RunDevice(nint devicePointer, int count)
    {
        if (Provider != ExecutionProviderKind.Cuda) throw new InvalidOperationException("device-memory input needs the CUDA execution provider.");
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count));
        _deviceBinding ??= new DeviceInputBinding(_session, Settings.DeviceId, _inputNames[0], _inputShapeTail,
            Model.Uint8Input ? OrtElementType.UInt8 : OrtElementType.Float, _outputNames);
        return new BatchOutputs(_deviceBinding.Run(_runOptions, devicePointer, count), _outputNames);
    }

    /// <summary>
    /// Copies <paramref name="count"/> input slots (as <see cref="RunBound"/> takes them) once into the provider's
    /// memory (the CUDA device's on CUDA) and binds them, with every output bound to a buffer there too: a
    /// <see cref="ResidentBatch"/> whose runs move no bytes between host and device. For timing inference alone
    /// (<c>bench --input-path device</c>) and for CUDA graphs, which need fixed addresses. Dispose it before the session.
    /// </summary>
    /// <exception cref="ArgumentException">An output's shape is not fixed apart from the batch axis, or is not float32.</exception>
    public ResidentBatch CreateResident(ReadOnlySpan<byte> slots, int count) =>
        new(_session, Provider, Settings.DeviceId, _inputNames[0], _inputShapeTail,
            Model.Uint8Input ? OrtElementType.UInt8 : OrtElementType.Float, _outputNames, slots, count);

    /// <inheritdoc />
    public void Dispose()
    {
        _binding?.Dispose();
        _deviceBinding?.Dispose();
        _session.Dispose();
        _runOptions.Dispose();
    }
}

/// <summary>An execution provider that was asked for and could not be created.</summary>
public sealed class ExecutionProviderException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Whether a session-creation error comes from CUDA, cuDNN or cuBLAS rather than from the model.</summary>
    internal static bool IsCudaFailure(Exception e) =>
        CudaFailure.IsMatch(e.Message) || e.Message.Contains("CUDNN", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("CUBLAS", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("libonnxruntime_providers_cuda", StringComparison.Ordinal);

    /// <summary>One line saying what failed and what to do, from ONNX Runtime's multi-line error with source locations.</summary>
    internal static string Explain(Exception e)
    {
        var msg = e.Message;
        foreach (var lib in new[] { "libcublasLt.so", "libcublas.so", "libcudnn.so", "libcudart.so", "libcurand.so", "libcufft.so", "libonnxruntime_providers_cuda.so", "libcuda.so" })
            if (msg.Contains(lib, StringComparison.Ordinal))
                return $"{lib} could not be loaded ({msg.Split('\n')[0]}). Install CUDA and cuDNN 9 libraries and put them on LD_LIBRARY_PATH.";
        if (e is EntryPointNotFoundException)
            return "this ONNX Runtime build has no CUDA entry point: the CPU-only package (Microsoft.ML.OnnxRuntime) is loaded. Build with -p:OrtFlavor=cuda.";
        if (CudaFailure.Match(msg) is { Success: true } m)
        {
            var code = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            var what = $"{m.Groups[1].Value} error {code} ({m.Groups[3].Value.Trim()})";
            var fix = m.Groups[1].Value != "CUDA" ? "check the cuDNN 9 / cuBLAS installation (versions built for CUDA 13) and the device's free memory." : code switch
            {
                2 => "the device is out of memory: lower the batch size, or cap the arena with gpu_mem_limit=... (SessionSettings.Cuda)",
                35 => "the NVIDIA driver is older than this CUDA 13 runtime: install NVIDIA driver 580 or newer.",
                46 => "the GPU is busy or unavailable: another process may hold it in exclusive-process compute mode (nvidia-smi -q -d COMPUTE).",
                100 => "no CUDA device is visible: check nvidia-smi; in a container, pass the GPU in (docker run --gpus all).",
                101 => "no such device: choose one with SessionSettings.DeviceId (ProviderDiagnostics.Diagnose lists them).",
                209 or 222 => "this ONNX Runtime build has no kernels for this GPU generation.",
                _ => "check nvidia-smi and dmesg; 'featureonnx providers' runs a one-convolution probe.",
            };
            return $"{what} in {m.Groups[4].Value}: {fix}";
        }
        return msg.Split('\n')[0];
    }

    // ORT: "CUDA failure 100: no CUDA-capable device is detected ; GPU=-1 ; hostname=... ; file=... ; line=70 ; expr=cudaGetDeviceCount(&num_devices);"
    // and "CUDNN failure 1001: CUDNN_STATUS_NOT_INITIALIZED ; ...". The expression says which call failed.
    private static readonly System.Text.RegularExpressions.Regex CudaFailure =
        new(@"\b(CUDA|CUDNN|CUBLAS) failure (\d+): ([^;]*);.*?expr=([A-Za-z_][A-Za-z0-9_]*)", System.Text.RegularExpressions.RegexOptions.Singleline);
}
