using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.OnnxRuntime;

namespace FeatureOnnx.Runtime;

/// <summary>
/// ONNX Runtime's offline optimisation, as a cache (<see cref="SessionSettings.OptimizedModelCache"/>): the first CPU
/// session of a model saves the graph as optimised (<c>SessionOptions.OptimizedModelFilePath</c>); later ones load
/// that file with graph optimisation off, which is what ONNX Runtime's documentation prescribes for optimised models.
/// Level all inserts layout transforms for the CPU's vector width, so the key holds the CPU model and its vector
/// extensions besides the model's bytes, the level and ONNX Runtime's version. The folder keeps the most recently used
/// entries (<see cref="Models.ConversionCache.EntriesKept"/>). Any failure falls back to a plain session: the cache only
/// saves time. int8 models take one more step (<see cref="SessionSettings.Int8ActivationKernels"/>): the optimised graph
/// is rewritten to run FeatureOnnx's activation kernels, always (through a temporary file when there is no cache
/// folder), and that rewritten graph is what the cache keeps.
/// </summary>
internal static class OptimizedModelCache
{
    /// <summary>A CPU session of <paramref name="model"/>; for an int8 model (<paramref name="int8"/>) whose settings allow it, with <see cref="Int8Kernels.ActivationFusion"/> applied to the optimised graph.</summary>
    public static InferenceSession CreateCpuSession(byte[] model, SessionOptions options, SessionSettings settings, bool int8, out Int8Kernels.ActivationFusionCount? fused)
    {
        fused = null;
        if (int8 && settings.Int8ActivationKernels && settings.OptimizationLevel == GraphOptimizationLevel.ORT_ENABLE_ALL && Int8Kernels.QuantizedActivations.IsAccelerated)
        {
            try
            {
                return CreateFusedSession(model, options, settings, out fused);
            }
            catch (Exception e) when (e is OnnxRuntimeException or InvalidOperationException or InvalidDataException)
            {
                // An ONNX Runtime that refuses the custom operators or the rewritten graph: its own kernels, as before.
                fused = null;
            }
        }
        if (settings.OptimizedModelCache is not { } folder || settings.OptimizationLevel == GraphOptimizationLevel.ORT_DISABLE_ALL)
            return new InferenceSession(model, options);
        var path = Path.Combine(folder, $"{Key(model, settings)}.onnx");
        if (File.Exists(path))
        {
            var level = options.GraphOptimizationLevel;
            try
            {
                options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL;
                var cached = new InferenceSession(path, options);
                Models.ConversionCache.Touch(path);
                return cached;
            }
            catch (OnnxRuntimeException)
            {
                TryDelete(path); // unreadable (a partial copy, another build): made again below
            }
            finally
            {
                options.GraphOptimizationLevel = level;
            }
        }
        string? tmp = null;
        try
        {
            Directory.CreateDirectory(folder);
            tmp = TempPath(path);
            options.OptimizedModelFilePath = tmp;
            // ONNX Runtime warns that a level-all graph is hardware specific; the key holds the CPU, so it is only
            // loaded where it was made. Warnings of this session are not shown; errors still are.
            options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            tmp = null; // no writable cache folder: a plain session
        }
        var session = new InferenceSession(model, options);
        if (tmp is not null) Keep(tmp, path, folder);
        return session;
    }

    /// <summary>A temporary name beside <paramref name="path"/>, private to this process and thread.</summary>
    private static string TempPath(string path) => $"{path}.{Environment.ProcessId}.{Environment.CurrentManagedThreadId}.tmp";

    /// <summary>Moves the entry written to <paramref name="tmp"/> into place and keeps the folder to its newest entries; a failure costs only the entry.</summary>
    private static void Keep(string tmp, string path, string folder)
    {
        try
        {
            if (!File.Exists(tmp)) return;
            File.Move(tmp, path, overwrite: true);
            Models.ConversionCache.KeepNewest(folder, "*.onnx");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
        }
    }

    /// <summary>
    /// The int8 path: ONNX Runtime optimises the graph once (its QDQ fusions and NHWC layout), the saved graph is
    /// rewritten by <see cref="Int8Kernels.ActivationFusion"/> and loaded with optimisation off and the kernels'
    /// domain registered. The rewritten graph is what the cache keeps (its own key); without a cache folder the
    /// optimised graph passes through a temporary file.
    /// </summary>
    private static InferenceSession CreateFusedSession(byte[] model, SessionOptions options, SessionSettings settings, out Int8Kernels.ActivationFusionCount fused)
    {
        var folder = settings.OptimizedModelCache;
        var path = folder is null ? null : Path.Combine(folder, $"{Key(model, settings)}-{FusionVersion}.onnx");
        var level = options.GraphOptimizationLevel;
        options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL;
        Int8Kernels.ActivationOps.Register(options);
        try
        {
            if (path is not null && File.Exists(path))
            {
                try
                {
                    var bytes = File.ReadAllBytes(path);
                    var cached = new InferenceSession(bytes, options);
                    fused = Int8Kernels.ActivationFusion.Count(bytes);
                    Models.ConversionCache.Touch(path);
                    return cached;
                }
                catch (OnnxRuntimeException)
                {
                    TryDelete(path); // unreadable: made again below
                }
            }
            var optimized = Optimize(model, settings, folder);
            (var rewritten, fused) = Int8Kernels.ActivationFusion.Rewrite(optimized);
            if (path is not null)
            {
                var tmp = TempPath(path);
                try
                {
                    File.WriteAllBytes(tmp, rewritten);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    TryDelete(tmp); // no writable cache folder: the session still runs
                }
                Keep(tmp, path, folder!);
            }
            return new InferenceSession(rewritten, options);
        }
        finally
        {
            options.GraphOptimizationLevel = level;
        }
    }

    /// <summary>Rewrite rules' version, in the cache key of rewritten graphs.</summary>
    private const string FusionVersion = "act1";

    /// <summary>ONNX Runtime's level-all graph of <paramref name="model"/> for this CPU, through a file in <paramref name="folder"/> (or the temporary folder).</summary>
    private static byte[] Optimize(byte[] model, SessionSettings settings, string? folder)
    {
        var dir = folder ?? Path.GetTempPath();
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            dir = Path.GetTempPath();
        }
        var tmp = Path.Combine(dir, $"featureonnx-optimizing-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
        try
        {
            using var options = FeatureSession.NewOptions(settings);
            options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL;
            options.OptimizedModelFilePath = tmp;
            options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
            using (new InferenceSession(model, options)) { }
            return File.ReadAllBytes(tmp);
        }
        finally
        {
            TryDelete(tmp);
        }
    }

    private static string Key(byte[] model, SessionSettings settings)
    {
        var identity = $"{OrtEnv.Instance().GetVersionString()}|{settings.OptimizationLevel}|{CpuIdentity.Value}";
        var hash = SHA256.HashData([.. SHA256.HashData(model), .. Encoding.UTF8.GetBytes(identity)]);
        return Convert.ToHexString(hash)[..24].ToLowerInvariant();
    }

    /// <summary>The CPU model name and the vector extensions ONNX Runtime's kernels choose between.</summary>
    private static readonly Lazy<string> CpuIdentity = new(() =>
    {
        var name = "";
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                name = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) ?? "";
        }
        catch (IOException) { }
        return $"{name}|{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}|avx2={System.Runtime.Intrinsics.X86.Avx2.IsSupported}|" +
               $"avx512f={System.Runtime.Intrinsics.X86.Avx512F.IsSupported}|avx512vbmi={System.Runtime.Intrinsics.X86.Avx512Vbmi.IsSupported}";
    });

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
