using System.Globalization;
using System.Text;

namespace FeatureOnnx.Benchmarking;

/// <summary>report.md: what was run, which providers were skipped and why, the figures per provider, batch size and input path, and the agreement per output.</summary>
internal static class BenchmarkMarkdown
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>The report as Markdown.</summary>
    public static string Render(BenchmarkReport report)
    {
        var md = new StringBuilder();
        void Line(string text = "") => md.Append(text).Append('\n');

        Line($"# featureonnx bench: {report.Model}");
        Line();
        var m = report.Machine;
        Line($"- Outputs: {string.Join(", ", report.Outputs.Select(o => $"`{o}`"))}");
        Line($"- Inputs: {report.Inputs}");
        Line($"- Runs: {report.WarmupIterations} warm-up + {report.Iterations} timed per configuration, each configuration a fresh session; " +
             "latency is one run from host input to host outputs (copies to and from the device included), except on the `device` path (device to device).");
        Line($"- Input paths: {string.Join("; ", report.InputPaths.Select(p => $"`{p}` {PathMeaning(p)}"))}");
        Line($"- Precisions: {string.Join(", ", report.Precisions.Select(p => $"`{p}`"))}; every row is compared with the CPU's fp32 run");
        foreach (var c in report.Conversions)
            Line($"- `{FeatureOnnx.Models.PreparedModel.Name(c.Precision)}` conversion ({c.Form}): {string.Join("; ", c.Describe())}");
        foreach (var kernels in report.Results.Select(r => r.Int8Kernels).OfType<string>().Distinct())
            Line($"- int8 kernels on the CPU: {kernels} (`--int8-kernels onnxruntime` runs ONNX Runtime's own)");
        Line($"- Session: graph optimisation `{report.Optimization}`, intra-op threads {(report.IntraOpThreads == 0 ? "0 (ONNX Runtime's default: one per physical core; reports before threads were recorded)" : report.IntraOpThreads.ToString(Invariant))}, " +
             $"CUDA options: {(report.CudaOptions.Length == 0 ? "ONNX Runtime's defaults" : $"`{report.CudaOptions}`")}");
        Line($"- Machine: {m.Cores} logical cores{(m.Cpu is null ? "" : $", {m.Cpu}")}, {m.Os}{(m.Gpu is null ? "" : $", GPU {m.Gpu}")}; ONNX Runtime {report.OrtVersion}");
        Line($"- Status: {report.Status}, finished {report.FinishedUtc.ToString("yyyy-MM-dd HH:mm", Invariant)} UTC; process peak resident memory {MiB(report.ProcessPeakBytes)} MiB");
        foreach (var s in report.Skipped)
            Line($"- **Skipped {s.Provider}{(s.Precision is { } q ? $" {q}" : "")}{(s.InputPath is { } p ? $" {p}" : "")}{(s.BatchSize is { } b ? $" at batch {b}" : "")}**: {s.Reason}");
        Line();

        if (report.Results.Count == 0)
        {
            Line("No configuration was measured.");
            return md.ToString();
        }
        Line("| provider | precision | batch | path | session s | first run ms | p50 ms | p90 ms | p99 ms | img/s | host peak MiB | host Δ MiB | device MiB | max abs | max rel | min cosine |");
        Line("|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var r in report.Results)
        {
            var worst = Worst(r.Agreement);
            var device = r.DeviceUsedBytes is { } used ? $"{MiB(used)} (+{MiB(r.DeviceDeltaBytes ?? 0)})" : r.DeviceMemoryNote?.StartsWith("n/a", StringComparison.Ordinal) == true ? "n/a" : "?";
            Line($"| {r.Provider} | {r.Precision} | {r.BatchSize} | {r.InputPath} | {(r.SessionCreationMs / 1000).ToString("0.00", Invariant)} | {Ms(r.FirstRunMs)} | {Ms(r.LatencyMs.P50)} | {Ms(r.LatencyMs.P90)} | {Ms(r.LatencyMs.P99)} | " +
                 $"{r.ImagesPerSecond.ToString(r.ImagesPerSecond >= 100 ? "0" : "0.0", Invariant)} | {MiB(r.HostPeakBytes)} | {MiB(r.HostPeakDeltaBytes)} | {device} | " +
                 $"{Small(worst.MaxAbs)} | {Small(worst.MaxRelative)} | {Cosine(worst.MinCosine)} |");
        }
        Line();
        Line("Agreement columns: the worst output. Per output, against the reference each row names:");
        Line();
        Line("| provider | precision | batch | path | output | shape | reference | max abs | max rel | min cosine |");
        Line("|---|---|--:|---|---|---|---|--:|--:|--:|");
        foreach (var r in report.Results)
            foreach (var a in r.Agreement)
                Line($"| {r.Provider} | {r.Precision} | {r.BatchSize} | {r.InputPath} | `{a.Output}` | [{string.Join(",", a.Shape)}] | {r.AgreementReference} | {Small(a.MaxAbs)} | {Small(a.MaxRelative)} | {Cosine(a.MinCosine)} |");
        Line();
        var bound = report.Results.Where(r => r.BoundInputMemory is not null).Select(r => $"{r.Provider} {r.InputPath}: {r.BoundInputMemory}").Distinct().ToList();
        if (bound.Count > 0)
        {
            Line($"Bound input buffer: {string.Join("; ", bound)}.");
            Line();
        }
        Line("![throughput against batch size](report.svg)");
        Line();
        Line("Definitions. Percentiles: numpy's default linear interpolation over the timed runs. img/s: batch x timed runs / their summed latency. " +
             "Host peak: the process's peak resident memory (VmHWM) during the configuration" +
             (report.PeakResetPerConfiguration ? ", reset when it started" : " (could not be reset here: cumulative over the process)") +
             "; host Δ: that peak minus the resident memory when the configuration started. Device: memory in use on the GPU after the timed runs " +
             "(cudaMemGetInfo, device-wide) and, in brackets, what the session added (ONNX Runtime's CUDA arena, cuDNN and cuBLAS workspaces); n/a on the CPU. " +
             "Max abs: largest |value - reference|; max rel: largest per-image max|value - reference| / max|reference|; min cosine: smallest per-image cosine similarity.");
        return md.ToString();
    }

    /// <summary>What an input path is, in a few words.</summary>
    public static string PathMeaning(string path) => path switch
    {
        "run" => "(`FeatureSession.Run`: float32 batch in pageable host memory, copied to the device by ONNX Runtime on every run)",
        "bound" => "(`FeatureSession.RunBound`: float32 batch copied into a reusable IOBinding input buffer, CUDA-pinned on CUDA)",
        "uint8" => "(`FeatureSession.RunBound` with uint8 HWC crops, a quarter of the bytes, into the model prepared with `Uint8Input`: normalised inside the graph)",
        "device" => "(`FeatureSession.CreateResident`: float32 batch copied to the device once before timing, outputs left in device buffers and read back once: inference alone, no host-device copies per run)",
        _ => "",
    };

    private static OutputAgreement Worst(IReadOnlyList<OutputAgreement> all) => new("worst", [],
        all.Count == 0 ? double.NaN : all.Max(a => a.MaxAbs),
        all.Count == 0 ? double.NaN : all.Max(a => a.MaxRelative),
        all.Count == 0 ? double.NaN : all.Min(a => a.MinCosine));

    private static string MiB(long bytes) => (bytes / 1048576.0).ToString("0", Invariant);

    private static string Ms(double ms) => ms.ToString(ms >= 100 ? "0" : ms >= 10 ? "0.0" : "0.00", Invariant);

    private static string Small(double v) => double.IsNaN(v) ? "-" : v == 0 ? "0" : v.ToString("0.0e+0", Invariant);

    private static string Cosine(double v) => double.IsNaN(v) ? "-" : v == 1 ? "1" : v.ToString("0.0000000", Invariant);
}
