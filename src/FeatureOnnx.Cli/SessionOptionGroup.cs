using System.CommandLine;
using FeatureOnnx.Models;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Cli;

/// <summary>
/// The options that choose a model and how ONNX Runtime runs it (--model, --provider, --fallback, --threads,
/// --optimization, --cuda-options, --int8-kernels), declared once: every command that creates a session adds this group and reads
/// its <see cref="SessionSettings"/> from <see cref="Bind"/>, the one place the settings are built from a command line.
/// </summary>
internal sealed class SessionOptionGroup
{
    /// <summary>--model: built-in name, manifest or ONNX file.</summary>
    public Option<string> Model { get; }

    /// <summary>--provider cpu|cuda[:N]; null for a command that takes several providers (bench --providers).</summary>
    public Option<string>? Provider { get; }

    /// <summary>--fallback cpu; null where <see cref="Provider"/> is.</summary>
    public Option<string?>? Fallback { get; }

    /// <summary>--threads: intra-op threads.</summary>
    public Option<int> Threads { get; }

    /// <summary>--optimization all|extended|basic|none.</summary>
    public Option<string> Optimization { get; }

    /// <summary>--cuda-options KEY=VALUE,...</summary>
    public Option<string?> CudaOptions { get; }

    /// <summary>--int8-kernels featureonnx|onnxruntime: who runs an int8 model's SiLU and squeeze-excitation gates on the CPU.</summary>
    public Option<string> Int8Kernels { get; }

    /// <param name="modelHelp">What --model takes, in the command's words.</param>
    /// <param name="deviceOption">Where the command takes the CUDA device: "--provider cuda:N", or another option; null adds --provider and --fallback.</param>
    /// <param name="optimizationHelp">Help of --optimization (null: the short one).</param>
    public SessionOptionGroup(string modelHelp, string? deviceOption = null, string? optimizationHelp = null)
    {
        Model = ModelOption(modelHelp);
        if (deviceOption is null)
        {
            Provider = new Option<string>("--provider") { Description = "Execution provider: cpu, or cuda[:DEVICE].", DefaultValueFactory = _ => "cpu" };
            Fallback = new Option<string?>("--fallback") { Description = "'cpu': if the provider cannot be created, run on the CPU (logged). Default: fail." };
            Fallback.AcceptOnlyFromAmong("cpu");
        }
        Threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads. Default 0: one per core this process may use (its CPU affinity and cgroup quota, not the physical-core count ONNX Runtime would pick); run.json records the number used.", DefaultValueFactory = _ => 0 };
        Optimization = new Option<string>("--optimization")
        {
            Description = optimizationHelp ?? "ONNX Runtime graph optimisation: all, extended, basic, none.",
            DefaultValueFactory = _ => "all",
        };
        Optimization.AcceptOnlyFromAmong([.. GraphOptimization.Names]);
        CudaOptions = new Option<string?>("--cuda-options") { Description = CudaOptionsHelp(deviceOption ?? "--provider cuda:N") };
        Int8Kernels = new Option<string>("--int8-kernels")
        {
            Description = "Precision int8 on the CPU: 'featureonnx' runs uint8 SiLU and squeeze-excitation gates (efficientnet) on FeatureOnnx's kernels " +
                          "(one table lookup per SiLU instead of ONNX Runtime's QLinearSigmoid + QLinearMul; AVX2, or AVX-512 VBMI where the CPU has it), " +
                          "'onnxruntime' keeps ONNX Runtime's own. run.json says which ran.",
            DefaultValueFactory = _ => "featureonnx",
        };
        Int8Kernels.AcceptOnlyFromAmong("featureonnx", "onnxruntime");
    }

    /// <summary>The group's options, in help order.</summary>
    public IEnumerable<Option> Options =>
        new Option?[] { Model, Provider, Fallback, Threads, Optimization, CudaOptions, Int8Kernels }.OfType<Option>();

    /// <summary>Adds every option of the group to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in Options) command.Options.Add(option);
    }

    /// <summary>The session settings the command line asks for (provider and fallback left at their defaults where the group has none).</summary>
    public SessionSettings Bind(ParseResult parse)
    {
        var provider = Provider is null ? default : ParseProvider(Provider, parse.GetValue(Provider)!);
        return new SessionSettings
        {
            Provider = Provider is null ? ExecutionProviderKind.Cpu : provider.Kind,
            DeviceId = provider.DeviceId,
            FallbackToCpu = Fallback is not null && parse.GetValue(Fallback) == "cpu",
            IntraOpThreads = parse.GetValue(Threads),
            OptimizationLevel = GraphOptimization.Parse(parse.GetValue(Optimization)!),
            Cuda = CliErrors.ForOption(CudaOptions, parse.GetValue(CudaOptions), CudaProviderSettings.Parse, withValue: false),
            Int8ActivationKernels = parse.GetValue(Int8Kernels) != "onnxruntime",
        };
    }

    /// <summary><paramref name="text"/> as a provider; a mistake names <paramref name="option"/> and the text.</summary>
    public static ExecutionProviderSpec ParseProvider(Option option, string text) => CliErrors.ForOption(option, text, t => ExecutionProviderSpec.Parse(t!));

    /// <summary>--model (-m), defaulting to the built-in model: the group's, and that of commands that build a model without a session (export-e2e).</summary>
    public static Option<string> ModelOption(string? description) =>
        new("--model", "-m") { Description = description, DefaultValueFactory = _ => ModelCatalog.DefaultModelName };

    /// <summary>Help of --cuda-options; <paramref name="deviceOption"/> names where the command takes the device.</summary>
    public static string CudaOptionsHelp(string deviceOption) =>
        "CUDA provider options as KEY=VALUE,...: cudnn_conv_algo_search=EXHAUSTIVE|HEURISTIC|DEFAULT (ONNX Runtime's default EXHAUSTIVE: slow first batch), " +
        "prefer_nhwc=1 (channels-last convolutions), enable_cuda_graph=1 (fixed shapes and device-bound buffers only), gpu_mem_limit=BYTES[K|M|G], " +
        "use_tf32=0 (full fp32 math), or any other key of ONNX Runtime's CUDA provider. The device is " + deviceOption + ". Default: ONNX Runtime's defaults.";
}
