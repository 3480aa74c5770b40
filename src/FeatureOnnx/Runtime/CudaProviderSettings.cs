using System.Globalization;

namespace FeatureOnnx.Runtime;

/// <summary>How cuDNN picks a convolution algorithm (ONNX Runtime's <c>cudnn_conv_algo_search</c>).</summary>
public enum CudnnConvAlgoSearch
{
    /// <summary>Time every algorithm on the first run of each input shape and keep the fastest (ONNX Runtime's default; the first run is slow).</summary>
    Exhaustive,
    /// <summary>cuDNN's heuristics pick one without timing (fast first run, sometimes a slower kernel).</summary>
    Heuristic,
    /// <summary>Always the default algorithm (<c>CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM</c>).</summary>
    Default,
}

/// <summary>
/// The CUDA execution provider options that matter for CNN backbones. Every property left null keeps ONNX Runtime's
/// default (written in its documentation below) and is not sent; <see cref="Extra"/> passes any other key of ONNX
/// Runtime's CUDA provider as it is (ONNX Runtime checks it when the session is created). The device is
/// <see cref="SessionSettings.DeviceId"/>.
/// </summary>
public sealed record CudaProviderSettings
{
    /// <summary>The option names typed here, as ONNX Runtime spells them.</summary>
    public static IReadOnlyList<string> TypedKeys { get; } = ["cudnn_conv_algo_search", "prefer_nhwc", "enable_cuda_graph", "gpu_mem_limit", "use_tf32"];

    /// <summary><c>cudnn_conv_algo_search</c>. ONNX Runtime's default: <see cref="CudnnConvAlgoSearch.Exhaustive"/>.</summary>
    public CudnnConvAlgoSearch? ConvAlgoSearch { get; init; }

    /// <summary><c>prefer_nhwc</c>: run convolutions in NHWC (channels-last), with layout transposes inserted at the graph's edges. ONNX Runtime's default: false.</summary>
    public bool? PreferNhwc { get; init; }

    /// <summary>
    /// <c>enable_cuda_graph</c>: capture the whole graph once and replay it. Needs fixed input shapes and fixed input and
    /// output addresses (IOBinding with buffers on the device); every node must run on CUDA. ONNX Runtime's default: false.
    /// </summary>
    public bool? EnableCudaGraph { get; init; }

    /// <summary><c>gpu_mem_limit</c>: cap on the CUDA memory arena, in bytes. ONNX Runtime's default: no limit.</summary>
    public long? MemoryLimitBytes { get; init; }

    /// <summary><c>use_tf32</c>: allow TF32 tensor-core math in fp32 convolutions and GEMMs (faster, about 1e-3 relative error). ONNX Runtime's default: true.</summary>
    public bool? UseTf32 { get; init; }

    /// <summary>Other CUDA provider options (e.g. <c>arena_extend_strategy</c>, <c>cudnn_conv_use_max_workspace</c>), passed verbatim. Default: none.</summary>
    public IReadOnlyDictionary<string, string> Extra { get; init; } = new Dictionary<string, string>();

    /// <summary>True when nothing is set: ONNX Runtime's defaults throughout.</summary>
    public bool IsDefault => ToOptions().Count == 0;

    /// <summary>The options set, as ONNX Runtime's key/value pairs (without the device).</summary>
    public IReadOnlyDictionary<string, string> ToOptions()
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        if (ConvAlgoSearch is { } search) options["cudnn_conv_algo_search"] = search.ToString().ToUpperInvariant();
        if (PreferNhwc is { } nhwc) options["prefer_nhwc"] = nhwc ? "1" : "0";
        if (EnableCudaGraph is { } graph) options["enable_cuda_graph"] = graph ? "1" : "0";
        if (MemoryLimitBytes is { } limit) options["gpu_mem_limit"] = limit.ToString(CultureInfo.InvariantCulture);
        if (UseTf32 is { } tf32) options["use_tf32"] = tf32 ? "1" : "0";
        foreach (var (key, value) in Extra) options[key] = value;
        return options;
    }

    /// <summary>What ONNX Runtime receives: <see cref="ToOptions"/> plus <c>device_id</c>.</summary>
    public Dictionary<string, string> ToProviderOptions(int deviceId) =>
        new(ToOptions()) { ["device_id"] = deviceId.ToString(CultureInfo.InvariantCulture) };

    /// <summary>The options set, as <c>key=value,key=value</c> (empty when none): the form <see cref="Parse"/> reads.</summary>
    public override string ToString() => string.Join(",", ToOptions().Select(p => $"{p.Key}={p.Value}"));

    /// <summary>
    /// Reads <c>key=value[,key=value...]</c>, e.g. <c>prefer_nhwc=1,cudnn_conv_algo_search=HEURISTIC,gpu_mem_limit=8G</c>.
    /// Booleans: 1/0/true/false; <c>gpu_mem_limit</c>: bytes with an optional K/M/G/T suffix (powers of 1024).
    /// </summary>
    /// <exception cref="ArgumentException">A malformed pair, a bad value, or <c>device_id</c> (set the device with <c>cuda:N</c>).</exception>
    public static CudaProviderSettings Parse(string? text)
    {
        var settings = new CudaProviderSettings();
        var extra = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0 || eq == pair.Length - 1)
                throw new ArgumentException($"CUDA option '{pair}': write KEY=VALUE, e.g. prefer_nhwc=1.");
            var key = pair[..eq].Trim().ToLowerInvariant();
            var value = pair[(eq + 1)..].Trim();
            settings = key switch
            {
                "cudnn_conv_algo_search" => settings with
                {
                    ConvAlgoSearch = Enum.TryParse<CudnnConvAlgoSearch>(value, ignoreCase: true, out var s) && !char.IsDigit(value[0]) ? s
                        : throw new ArgumentException($"cudnn_conv_algo_search={value}: use EXHAUSTIVE, HEURISTIC or DEFAULT."),
                },
                "prefer_nhwc" => settings with { PreferNhwc = ParseBool(key, value) },
                "enable_cuda_graph" => settings with { EnableCudaGraph = ParseBool(key, value) },
                "use_tf32" => settings with { UseTf32 = ParseBool(key, value) },
                "gpu_mem_limit" => settings with { MemoryLimitBytes = ParseBytes(key, value) },
                "device_id" => throw new ArgumentException("device_id: the device is not a CUDA option; choose it with SessionSettings.DeviceId."),
                _ => settings,
            };
            if (!TypedKeys.Contains(key)) extra[key] = value;
        }
        return settings with { Extra = extra };
    }

    private static bool ParseBool(string key, string value) => value.ToLowerInvariant() switch
    {
        "1" or "true" => true,
        "0" or "false" => false,
        _ => throw new ArgumentException($"{key}={value}: use 1 or 0."),
    };

    private static long ParseBytes(string key, string value)
    {
        var shift = char.ToUpperInvariant(value[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        var digits = shift == 0 ? value : value[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0 || n > long.MaxValue >> shift)
            throw new ArgumentException($"{key}={value}: a positive number of bytes, optionally with K, M, G or T (e.g. 8G).");
        return n << shift;
    }
}
