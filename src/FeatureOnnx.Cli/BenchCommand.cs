using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using FeatureOnnx.Benchmarking;
using FeatureOnnx.Models;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx bench --model M --providers cpu,cuda --batch 1,8,32 -o REPORT_DIR</c>: execution providers compared on speed, memory and agreement.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var defaults = new BenchmarkOptions();
        var session = new SessionOptionGroup("Built-in model name, a manifest (DIR/NAME.json) or an ONNX file.", deviceOption: "--providers cuda:N");
        var providers = new Option<string>("--providers")
        {
            Description = "Comma-separated providers to compare: cpu, cuda[:DEVICE]. One that cannot load here is skipped, and the report says why.",
            DefaultValueFactory = _ => string.Join(",", defaults.Providers),
        };
        var batch = new Option<string>("--batch", "-b")
        {
            Description = "Comma-separated batch sizes, each with a fresh session (e.g. 1,8,32,256; 256 takes minutes per run set on a few CPU cores).",
            DefaultValueFactory = _ => string.Join(",", defaults.BatchSizes),
        };
        var inputPath = new Option<string>("--input-path")
        {
            Description = "Comma-separated ways to feed each batch, each timed per provider and batch size: " +
                          "run (FeatureSession.Run: float32 batches from ordinary host memory, copied to the device by ONNX Runtime on each run; the default), " +
                          "bound (RunBound: float32 copied into a reusable IOBinding buffer, CUDA-pinned on CUDA), " +
                          "uint8 (RunBound with 8-bit crops into the model prepared with --uint8-input: normalised in the graph, a quarter of the bytes), " +
                          "device (float32 copied to the device once before timing, outputs kept in device buffers: inference alone, as PyTorch times a model " +
                          "whose input is already on the GPU; fixed addresses, as --cuda-options enable_cuda_graph=1 needs). " +
                          "Every row is compared with the CPU's run path on the same inputs. E.g. --input-path run,bound,uint8,device.",
            DefaultValueFactory = _ => string.Join(",", defaults.InputPaths.Select(ProviderBenchmark.InputPathName)),
        };
        var precision = new Option<string>("--precision")
        {
            Description = "Comma-separated precisions to compare, an axis like --providers: fp32, fp16, int8 (converted when the session is prepared and cached next to the model, " +
                          "as 'extract --precision'; int8 is calibrated on --calibrate images, else on --images, and needs one of them). " +
                          "Every row is compared with the CPU's fp32 run; fp32 is always run, as that reference. E.g. --precision fp32,fp16,int8.",
            DefaultValueFactory = _ => "fp32",
        };
        var images = new Option<string[]>("--images")
        {
            Description = "Image files or folders to use as inputs, preprocessed as the model's manifest says (the first max(--batch) images; fewer are reused in order). " +
                          "Default: seeded random pixels, and the report says so.",
        };
        var decodeScale = new Option<string>("--decode-scale") // issue 17
        {
            Description = "How --images JPEGs are decoded, as 'extract --decode-scale': exact, draft or auto[:F].",
            DefaultValueFactory = _ => "exact",
        };
        var (calibrate, calibration, calibrateCount) = ExtractCommand.CalibrationOptions();
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs per configuration before timing.", DefaultValueFactory = _ => defaults.WarmupIterations };
        var iters = new Option<int>("--iters") { Description = "Timed runs per configuration (percentiles over these).", DefaultValueFactory = _ => defaults.Iterations };
        var layers = new Option<string?>("--layers", "-l")
        {
            Description = "Comma-separated outputs to fetch (as 'extract --layers'). Early layers alone prune the graph and run faster. Default: the manifest's default.",
        };
        var seed = new Option<int>("--seed") { Description = "Seed of the random inputs (without --images).", DefaultValueFactory = _ => 42 };
        var output = new Option<string>("--output", "-o") { Description = "Report folder: report.md (tables), report.json (every figure), report.svg (throughput against batch size).", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace a report already in the folder." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress lines (results are still printed)." };
        var command = new Command("bench",
            "Compare execution providers on one model: per provider, batch size and input path (--input-path), session creation time, latency p50/p90/p99, throughput, " +
            "host and device memory, and the agreement of every output with the CPU provider on the same inputs. " +
            "A provider that cannot load is skipped with the reason. Exit code: 0 done, 1 could not run (or no provider could), 130 interrupted.")
        {
            providers, batch, inputPath, precision, images, decodeScale, calibrate, calibration, calibrateCount, warmup, iters, layers, seed, output, overwrite, quiet,
        };
        session.AddTo(command);
        command.SetAction((parse, cancellation) => Task.FromResult(CliErrors.Guard(() =>
        {
            var outDir = parse.GetValue(output)!;
            if (File.Exists(Path.Combine(outDir, "report.json")) && !parse.GetValue(overwrite))
                throw new IOException($"{outDir} already holds a report (report.json). Choose another folder or pass --overwrite to replace it.");
            var request = new BenchmarkRequest
            {
                Model = parse.GetValue(session.Model)!,
                Layers = parse.GetValue(layers) is { } l ? l.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [],
                Precisions = parse.GetResult(precision) is { Implicit: false } ? ParsePrecisions(parse.GetValue(precision)!) : null,
                Images = parse.GetValue(images) ?? [],
                DecodeScale = parse.GetValue(images) is { Length: > 0 } ? ExtractCommand.ParseDecodeScale(parse.GetValue(decodeScale)!) : null,
                Seed = parse.GetValue(seed),
                CalibrationImages = ExtractCommand.CalibrationInputs(parse, calibrate, parse.GetValue(precision)),
                Calibration = ExtractCommand.ParseCalibration(parse, calibration, calibrateCount),
                Options = new BenchmarkOptions
                {
                    Providers = parse.GetValue(providers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(p => SessionOptionGroup.ParseProvider(providers, p)).Select(p => new ProviderChoice(p.Kind, p.DeviceId)).ToList(),
                    BatchSizes = ParseBatchSizes(parse.GetValue(batch)!),
                    InputPaths = ParseInputPaths(parse.GetValue(inputPath)!),
                    WarmupIterations = parse.GetValue(warmup),
                    Iterations = parse.GetValue(iters),
                    Session = session.Bind(parse),
                },
            };
            var setup = BenchmarkSetup.Prepare(request);
            var prepared = setup.Models[0].Model;
            foreach (var warning in setup.Warnings) Console.Error.WriteLine($"warning: {CliErrors.InFlags(warning)}");
            foreach (var m in setup.Models.Where(m => m.Model.Conversion is not null))
                Console.WriteLine($"{PreparedModel.Name(m.Model.Precision)}: {string.Join("; ", m.Model.Conversion!.Describe())}{(m.Model.CachedAt is { } at ? $" (cached: {at})" : "")}");
            foreach (var problem in setup.Inputs.Problems) Console.Error.WriteLine($"warning: {problem.Key}: {problem.Reason} (not used)");
            Console.WriteLine($"bench {setup.Manifest.Name} [{string.Join(", ", prepared.Outputs.Select(o => o.Name))}]: inputs: {setup.Inputs.Description}");

            // SIGINT/SIGTERM stop between runs and still write the report of what finished (status "interrupted").
            using var stop = new GracefulStop(cancellation);
            var report = setup.Run(new BenchProgress(parse.GetValue(quiet)), stop.Token);
            BenchmarkReportWriter.Write(report, outDir);
            foreach (var kernels in report.Results.Select(r => r.Int8Kernels).OfType<string>().Distinct())
                Console.WriteLine($"int8 kernels on the CPU: {kernels} (--int8-kernels onnxruntime runs ONNX Runtime's own)");
            Console.WriteLine($"wrote {outDir}: {string.Join(", ", BenchmarkReportWriter.FileNames)}");
            if (report.Status == "interrupted") return CliErrors.Interrupted;
            if (report.Results.Count == 0)
            {
                Console.Error.WriteLine("error: no provider could run; the report says why.");
                return CliErrors.Failed;
            }
            return CliErrors.Ok;
        })));
        return command;
    }

    internal static IReadOnlyList<int> ParseBatchSizes(string text)
    {
        var sizes = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            sizes.Add(int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                ? n
                : throw new ArgumentException($"--batch {text}: '{part}' is not a positive whole number (e.g. --batch 1,8,32)."));
        return sizes.Count > 0 ? sizes : throw new ArgumentException("--batch names no batch size.");
    }

    /// <summary>--precision fp32,fp16 as precisions, fp32 first (the reference; added when not listed).</summary>
    internal static IReadOnlyList<ModelPrecision> ParsePrecisions(string text)
    {
        var list = new List<ModelPrecision> { ModelPrecision.Fp32 };
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var p = ExtractCommand.ParsePrecision(part);
            if (p != ModelPrecision.Fp32 && list.Contains(p)) throw new ArgumentException($"--precision {text}: '{part}' is listed twice.");
            if (!list.Contains(p)) list.Add(p);
        }
        return list;
    }

    internal static IReadOnlyList<BenchmarkInputPath> ParseInputPaths(string text)
    {
        var paths = new List<BenchmarkInputPath>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var path = Enum.GetValues<BenchmarkInputPath>().Where(p => ProviderBenchmark.InputPathName(p) == part.ToLowerInvariant()).Cast<BenchmarkInputPath?>().FirstOrDefault()
                       ?? throw new ArgumentException($"--input-path {text}: '{part}' is not one of run, bound, uint8, device.");
            if (paths.Contains(path)) throw new ArgumentException($"--input-path {text}: '{part}' is listed twice.");
            paths.Add(path);
        }
        return paths.Count > 0 ? paths : throw new ArgumentException("--input-path names no path (run, bound, uint8, device).");
    }

    /// <summary>One line per configuration finished or skipped (stdout); what is running, every few seconds (stderr).</summary>
    private sealed class BenchProgress(bool quiet) : IProgress<BenchmarkProgress>
    {
        private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
        private readonly Stopwatch _sinceLine = Stopwatch.StartNew();

        public void Report(BenchmarkProgress p)
        {
            switch (p.Stage)
            {
                case BenchmarkStage.Skipped:
                    Console.WriteLine($"skipped {p.Provider}{(p.Precision is { } q ? $" {q}" : "")}{(p.InputPath is { } path ? $" {path}" : "")}{(p.BatchSize > 0 ? $" at batch {p.BatchSize}" : "")}: {p.Reason}");
                    break;
                case BenchmarkStage.Finished when p.Result is { } r:
                    var worst = r.Agreement.Count == 0 ? null : r.Agreement.MinBy(a => a.MinCosine);
                    // The CLI runs with invariant globalization: numbers print with '.' everywhere.
                    Console.WriteLine(
                        $"{r.Provider,-7} {r.Precision,-4} {r.InputPath,-5} batch {r.BatchSize,4}: session {r.SessionCreationMs / 1000:0.00}s, p50 {r.LatencyMs.P50:0.00} ms, p90 {r.LatencyMs.P90:0.00}, p99 {r.LatencyMs.P99:0.00}, " +
                        $"{r.ImagesPerSecond:0.0} img/s, host peak {r.HostPeakBytes / 1048576.0:0} MiB (+{r.HostPeakDeltaBytes / 1048576.0:0})" +
                        (r.DeviceUsedBytes is { } d ? $", device {d / 1048576.0:0} MiB (+{(r.DeviceDeltaBytes ?? 0) / 1048576.0:0})" : "") +
                        (worst is null ? "" : $"; vs cpu fp32: max abs {worst.MaxAbs:0.0e+0}, min cosine {worst.MinCosine:0.0000000}"));
                    _sinceLine.Restart();
                    break;
                case BenchmarkStage.CreatingSession when !quiet:
                    Console.Error.WriteLine($"bench: {p.Provider} {p.Precision} {p.InputPath} batch {p.BatchSize}: creating the session");
                    _sinceLine.Restart();
                    break;
                case BenchmarkStage.WarmingUp or BenchmarkStage.Timing when !quiet && _sinceLine.Elapsed >= Interval:
                    Console.Error.WriteLine($"bench: {p.Provider} {p.InputPath} batch {p.BatchSize}: run {p.Done}/{p.Total}");
                    _sinceLine.Restart();
                    break;
            }
        }
    }
}
