using System.CommandLine;
using FeatureOnnx.Models;
using FeatureOnnx.Pipeline;
using FeatureOnnx.Runtime;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx extract INPUT... -o OUTDIR</c>: the main job.</summary>
internal static class ExtractCommand
{
    public static Command Create()
    {
        var inputs = new Argument<string[]>("inputs")
        {
            Description = "Image files, folders (walked recursively for .jpg .png .bmp .gif .tif .webp .tga .pbm/.pgm/.ppm files; other files are listed in errors.csv as not images), @LIST.txt files (one input per line; @/dev/stdin reads a pipe) and .tar shards (image members read in place). Only regular files are read.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var output = new Option<string>("--output", "-o") { Description = "Output folder: LAYER.npy (float32, one row per image), index.csv (row,path), errors.csv (path,reason), run.json.", Required = true };
        var session = new SessionOptionGroup(
            "Built-in model name, a manifest (DIR/NAME.json, from export-scripts/export.py) or an ONNX file. 'featureonnx inspect MODEL' shows its outputs.",
            optimizationHelp: "ONNX Runtime graph optimisation: all (fastest on CPU: adds NCHWc layout transforms, which reorder float sums), extended, basic, none. Use extended for the closest agreement with PyTorch.");
        var layers = new Option<string?>("--layers", "-l")
        {
            Description = "Comma-separated outputs to extract: manifest output names (resnet18: pooled, layer1..layer4) or any graph tensor as TENSOR[=alias]. Default: the manifest's default (resnet18: pooled). " +
                          "With --e2e: some of the model's outputs (those given to 'export-e2e --layers'); default: all of them.",
        };
        var batch = new Option<int>("--batch", "-b") { Description = "Images per inference call.", DefaultValueFactory = _ => 32 };
        var workers = new Option<int>("--workers") { Description = "Parallel decode workers.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var decodeNice = new Option<int>("--decode-nice")
        {
            Description = "Linux nice value (0-19) of the decode threads while inference runs on the CPU, so decoding takes the cycles ONNX Runtime leaves instead of stalling it; 0 keeps normal priority.",
            DefaultValueFactory = _ => 10,
        };
        var maxPixels = new Option<long>("--max-pixels") { Description = "Refuse images whose header declares more pixels than this (decompression bombs).", DefaultValueFactory = _ => 100_000_000 };
        var maxFileBytes = new Option<long>("--max-file-bytes")
        {
            Description = "Refuse input files (and tar members) larger than this, from their size, before reading them: bytes, or with K, M or G (at most 2G). " +
                          "The default, 1G, is more than any image within the default --max-pixels takes (a 100-megapixel 16-bit RGBA PNG or TIFF stored uncompressed is 800 MB).",
            DefaultValueFactory = _ => FeatureOnnx.Sources.InputFile.DefaultMaxFileBytes,
            CustomParser = result =>
            {
                try
                {
                    return ParseBytes(result.Tokens.Count == 1 ? result.Tokens[0].Value : "");
                }
                catch (ArgumentException e)
                {
                    result.AddError(e.Message);
                    return 0;
                }
            },
        };
        var uint8Input = new Option<string>("--uint8-input")
        {
            Description = "Feed ONNX Runtime the 8-bit crops and normalise them inside the graph (a quarter of the bytes per batch, identical values): on, off, " +
                          "or auto (on with --provider cuda, off on the CPU).",
            DefaultValueFactory = _ => "auto",
        };
        uint8Input.AcceptOnlyFromAmong("auto", "on", "off");
        var precision = new Option<string?>("--precision") { Description = PrecisionHelp };
        precision.AcceptOnlyFromAmong("fp32", "fp16", "int8");
        var (calibrate, calibration, calibrateCount) = CalibrationOptions();
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the results of an earlier run in the output folder, or write into a non-empty folder that holds no run (refused without it: index.csv, errors.csv and run.json there are replaced, *.npy deleted)." };
        var resume = new Option<bool>("--resume")
        {
            Description = "Continue an unfinished run in the output folder (killed, crashed or Ctrl+C'd) with the same command: committed rows are kept, no row is redone or duplicated. On a completed run it does nothing.",
        };
        var shard = new Option<string?>("--shard")
        {
            Description = "Process a deterministic part of the inputs: I/N (0-based, e.g. 2/8), or 'auto' to read it from a Kubernetes Indexed Job or a Slurm job array. The split depends only on each input's path.",
        };
        var tensorsIn = new Option<string?>("--tensors-in")
        {
            Description = "Feed a float32 .npy of already preprocessed inputs [N,3,H,W] instead of images (decode and resize taken out; for parity checks of the runtime alone). Inputs are then not needed.",
        };
        var pool = new Option<string>("--pool")
        {
            Description = "Reduce [N,C,H,W] maps before writing: avg or max (global pooling to [N,C]), flatten ([N,C*H*W]), none.",
            DefaultValueFactory = _ => "none",
        };
        pool.AcceptOnlyFromAmong("avg", "max", "flatten", "none");
        var pca = new Option<string?>("--pca") { Description = "Apply a PCA fitted by 'featureonnx pca fit' (after --pool) to every extracted output." };
        var l2 = new Option<bool>("--l2") { Description = "Scale every row to unit L2 norm (last step)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress output." };
        var e2e = new Option<bool>("--e2e")
        {
            Description = "--model is an end-to-end model from 'featureonnx export-e2e': files go in as bytes, decoded and preprocessed inside ONNX Runtime, " +
                          "in --workers worker processes (default: cores, at most 4; each holds the model) so that a file that crashes or hangs the decoder fails alone.",
        };
        // --- decode scale (issue 17) ---
        var decodeScale = new Option<string>("--decode-scale")
        {
            Description = "How large JPEGs are decoded: exact (full size; crops identical to PIL), draft (libjpeg-turbo's 1/2, 1/4 or 1/8 DCT-scaled decode as PIL's " +
                          "Image.draft('RGB', (S, S)) picks it, S the resize target; crops identical to PIL's draft path), or auto[:F] (the largest reduction keeping " +
                          "the shorter side >= F x S, default F = 2: far closer to exact). Other formats and small JPEGs are decoded at full size.",
            DefaultValueFactory = _ => "exact",
        };
        // --- end decode scale ---
        var decoder = new Option<string>("--decoder")
        {
            Description = "Where images are decoded and resized: gpu (nvJPEG + a PIL-exact CUDA resize into the model's input on the device; needs --provider cuda, " +
                          "libnvjpeg.so.13 and libnvrtc.so.13; other formats, EXIF-rotated JPEGs and what nvJPEG refuses are decoded on the CPU in the same run), " +
                          "cpu (the exact reference path), or auto (gpu when the run is on CUDA and the GPU decoder starts, else cpu). " +
                          "With gpu, --fallback cpu decodes on the CPU where the GPU decoder cannot start.",
            DefaultValueFactory = _ => "auto",
        };
        decoder.AcceptOnlyFromAmong("auto", "cpu", "gpu");
        var timeout = new Option<double>("--timeout") { Description = "With --e2e: seconds one image may take before its worker is killed and the image fails.", DefaultValueFactory = _ => 30 };

        var command = new Command("extract",
            "Extract feature vectors (or intermediate maps) for images, batched, with the model's own preprocessing. " +
            "Bad files go to errors.csv and never stop the run. Exit code: 0 all inputs extracted, 3 some inputs failed, 1 could not run, 130 interrupted.")
        {
            inputs, output, layers, batch, workers, decodeNice, maxPixels, maxFileBytes, shard, tensorsIn, pool, pca, l2, overwrite, resume, quiet, e2e, timeout,
        };
        session.AddTo(command);
        command.Options.Add(uint8Input);
        command.Options.Add(precision);
        command.Options.Add(calibrate);
        command.Options.Add(calibration);
        command.Options.Add(calibrateCount);
        command.Options.Add(decodeScale);
        command.Options.Add(decoder);
        command.SetAction((parse, cancellation) => CliErrors.GuardAsync(async () =>
        {
            var settings = session.Bind(parse);
            if (parse.GetValue(inputs) is not { Length: > 0 } && parse.GetValue(tensorsIn) is null)
                throw new ArgumentException("name at least one image file or folder (or --tensors-in FILE.npy).");
            if (parse.GetValue(tensorsIn) is null && parse.GetValue(inputs)!.All(i => !Exists(i.StartsWith('@') ? i[1..] : i)))
                throw new FileNotFoundException($"no input found: {string.Join(", ", parse.GetValue(inputs)!.Take(5))}{(parse.GetValue(inputs)!.Length > 5 ? ", ..." : "")} " +
                                                $"{(parse.GetValue(inputs)!.Length == 1 ? "does" : "do")} not exist (paths are relative to {Environment.CurrentDirectory}).");
            if (parse.GetValue(e2e) && parse.GetValue(precision) is not null)
                throw new ArgumentException("--precision cannot be combined with --e2e; write the converted model once with 'featureonnx convert MODEL --precision fp16 -o NAME.json' and pass --model NAME.json.");
            var scale = ParseDecodeScale(parse.GetValue(decodeScale)!);
            if (scale.Mode != FeatureOnnx.Preprocessing.DecodeScaleMode.Exact && (parse.GetValue(e2e) || parse.GetValue(tensorsIn) is not null))
                throw new ArgumentException($"--decode-scale {scale} applies to images decoded by extract itself; {(parse.GetValue(e2e) ? "--e2e decodes inside the model" : "--tensors-in holds tensors, not images")}.");
            var decodeDevice = parse.GetValue(decoder) switch { "gpu" => FeatureOnnx.Preprocessing.DecodeDevice.Gpu, "cpu" => FeatureOnnx.Preprocessing.DecodeDevice.Cpu, _ => FeatureOnnx.Preprocessing.DecodeDevice.Auto };
            if (decodeDevice == FeatureOnnx.Preprocessing.DecodeDevice.Gpu && (parse.GetValue(e2e) || parse.GetValue(tensorsIn) is not null))
                throw new ArgumentException($"--decoder gpu applies to images decoded by extract itself; {(parse.GetValue(e2e) ? "--e2e decodes inside the model" : "--tensors-in holds tensors, not images")}.");
            var options = new ExtractionOptions
            {
                DecodeScale = scale,
                Decoder = decodeDevice,
                DecoderFallbackToCpu = settings.FallbackToCpu,
                Inputs = parse.GetValue(inputs)!,
                OutputDirectory = parse.GetValue(output)!,
                Model = parse.GetValue(session.Model)!,
                Layers = parse.GetValue(layers) is { } l ? l.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [],
                BatchSize = parse.GetValue(batch),
                DecodeWorkers = parse.GetValue(workers),
                DecodeNice = parse.GetValue(decodeNice),
                MaxPixels = parse.GetValue(maxPixels),
                MaxFileBytes = parse.GetValue(maxFileBytes),
                Overwrite = parse.GetValue(overwrite),
                Resume = parse.GetValue(resume),
                TensorsIn = parse.GetValue(tensorsIn),
                Uint8Input = parse.GetValue(uint8Input) switch { "on" => true, "off" => false, _ => null },
                Precision = parse.GetValue(precision) is { } p ? ParsePrecision(p) : null,
                CalibrationInputs = CalibrationInputs(parse, calibrate, parse.GetValue(precision)),
                Calibration = ParseCalibration(parse, calibration, calibrateCount),
                PostProcess = new FeatureOnnx.PostProcessing.PostProcessOptions
                {
                    Pooling = FeatureOnnx.PostProcessing.SpatialPooling.Parse(parse.GetValue(pool)!),
                    Pca = parse.GetValue(pca) is { } pcaPath ? FeatureOnnx.PostProcessing.PcaModel.Load(pcaPath) : null,
                    L2 = parse.GetValue(l2),
                },
                Shard = parse.GetValue(shard) is { } s ? CliErrors.ForOption(shard, s, t => Shard.Parse(t!)) : Shard.All,
                Session = settings,
            };
            using var reporter = new ProgressReporter(parse.GetValue(quiet));
            using var stop = new GracefulStop(cancellation);
            var result = parse.GetValue(e2e)
                ? await ExtractE2e.RunAsync(options, TimeSpan.FromSeconds(parse.GetValue(timeout)), parse.GetResult(workers) is { Implicit: false }, reporter, stop.Token)
                : await RunPipeline(options, reporter, stop.Token);
            reporter.Finish();
            var errorsCsv = Path.Combine(options.OutputDirectory, "errors.csv");
            if (result.AlreadyComplete)
            {
                Console.WriteLine($"already complete: {result.Extracted} rows in {options.OutputDirectory}" +
                                  (result.Failed > 0 ? $", {result.Failed} input(s) failed (see {errorsCsv})" : ""));
                return result.Failed > 0 ? CliErrors.SomeInputsFailed : CliErrors.Ok;
            }
            foreach (var warning in result.Warnings) Console.Error.WriteLine($"warning: {CliErrors.InFlags(warning)}");
            var shapes = string.Join(", ", result.Layers.Select(p => $"{p.Key}.npy [{string.Join(",", p.Value)}]"));
            Console.WriteLine($"{result.Status}: {result.Extracted} extracted, {result.Failed} failed" +
                              (result.NotProcessed > 0 ? $", {result.NotProcessed} not processed" : "") +
                              $" in {result.Seconds["wall"]:0.0}s ({result.ImagesPerSecond:0.0} img/s, {result.Provider}); " +
                              $"busy: decode {result.Seconds["decodeBusy"]:0.0}s, inference {result.Seconds["inferenceBusy"]:0.0}s, write {result.Seconds["writeBusy"]:0.00}s");
            Console.WriteLine($"wrote {options.OutputDirectory}: {shapes}{(shapes.Length > 0 ? ", " : "")}index.csv, errors.csv, run.json");
            if (result.Int8Kernels is { } kernels) Console.WriteLine($"int8 kernels on the CPU: {kernels}");
            foreach (var line in FailureSummary.Lines(errorsCsv)) Console.WriteLine(line);
            PrintDecodeScale(result);
            if (result.Status == "interrupted")
            {
                Console.WriteLine("interrupted: outputs hold every row done so far; run the same command with --resume to continue.");
                return CliErrors.Interrupted;
            }
            return result.Failed > 0 ? CliErrors.SomeInputsFailed : CliErrors.Ok;
        }));
        return command;
    }

    private static bool Exists(string path) => File.Exists(path) || Directory.Exists(path);

    /// <summary>The pipeline, with the flags that choose the GPU decoder named in its refusal.</summary>
    private static async Task<ExtractionResult> RunPipeline(ExtractionOptions options, ProgressReporter reporter, CancellationToken stop)
    {
        try
        {
            return await new ExtractionPipeline().RunAsync(options, reporter, stop);
        }
        catch (FeatureOnnx.Preprocessing.DecoderUnavailableException e) when (options.Decoder == FeatureOnnx.Preprocessing.DecodeDevice.Gpu)
        {
            throw new FeatureOnnx.Preprocessing.DecoderUnavailableException(
                $"--decoder gpu: {e.Message} Use --decoder cpu (or auto), or add --fallback cpu to decode on the CPU where the GPU decoder cannot start.");
        }
    }

    // --- decode scale (issue 17) ---
    /// <summary>--decode-scale exact|draft|auto[:F] (extract and bench), the flag named in the error.</summary>
    internal static FeatureOnnx.Preprocessing.DecodeScale ParseDecodeScale(string text)
    {
        try
        {
            return FeatureOnnx.Preprocessing.DecodeScale.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"--decode-scale: {e.Message}", e);
        }
    }

    /// <summary>The scales used when not exact; with exact, the hint to try auto when decoding dominated.</summary>
    private static void PrintDecodeScale(ExtractionResult result)
    {
        if (result.DecodeScale is { } scale && scale != "exact" && result.DecodedAtScale is { } counts)
            Console.WriteLine($"decode scale {scale}: {string.Join(", ", counts.Select(p => $"{p.Value} at {p.Key}"))}");
        if (result.DecodeScaleAutoAdvised)
            Console.WriteLine($"hint: decoding took {result.Seconds["decodeBusy"]:0.0}s of busy time against {result.Seconds["inferenceBusy"]:0.0}s of inference, and " +
                              $"{result.ReducibleJpegs} of {result.Extracted} images are JPEGs large enough to decode at a reduced scale: " +
                              "--decode-scale auto skips most of that work (pooled features within cosine 0.999 of exact on the test photos; README, \"Large photos\").");
    }
    // --- end decode scale ---

    /// <summary>Help of --precision (extract).</summary>
    internal const string PrecisionHelp =
        "Precision to run at: fp32; fp16 (float16 weights and compute with float32 reductions, exponentials and normalisations, for CUDA); " +
        "or int8 (for the CPU: int8 weights per channel, uint8 activations calibrated on --calibrate images, or on the first --calibrate-count images of the input, which the run says). " +
        "Converted when the session is prepared and cached in .featureonnx-cache/ next to the model, else in $XDG_CACHE_HOME/featureonnx. " +
        "run.json records the precision, the rules applied and (int8) the calibration set. Default: the model's own (fp32 unless written by 'featureonnx convert').";

    /// <summary>fp32|fp16|int8 as a precision.</summary>
    internal static ModelPrecision ParsePrecision(string text) =>
        CliErrors.ForOption(PrecisionOptionName, text, t => PreparedModel.ParsePrecision(t!), withValue: false);

    private const string PrecisionOptionName = "--precision";

    /// <summary>--calibrate, --calibration and --calibrate-count, shared by extract, bench and convert.</summary>
    internal static (Option<string[]> Calibrate, Option<string> Method, Option<int> Count) CalibrationOptions()
    {
        var defaults = new FeatureOnnx.Models.CalibrationOptions();
        var calibrate = new Option<string[]>("--calibrate")
        {
            Description = "int8: images to calibrate the activation ranges on (folders, @lists or .tar shards, as inputs are named), like those the model will see; " +
                          "the first --calibrate-count are used. Their contents' SHA-256 is part of the cache key and of run.json.",
            AllowMultipleArgumentsPerToken = true,
        };
        var method = new Option<string>("--calibration")
        {
            Description = $"int8: how activation ranges are taken: minmax (smallest to largest value) or percentile[:P] (the (100-P)-th to P-th percentile of each tensor, clipping rare outliers). Default: {defaults.MethodName}.",
            DefaultValueFactory = _ => defaults.MethodName,
        };
        var count = new Option<int>("--calibrate-count")
        {
            Description = $"int8: calibration images used (the first ones listed). Default: {defaults.Count}.",
            DefaultValueFactory = _ => defaults.Count,
        };
        return (calibrate, method, count);
    }

    /// <summary>The --calibrate inputs (null when none: extract then calibrates on its own input); refused without --precision int8.</summary>
    internal static IReadOnlyList<string>? CalibrationInputs(System.CommandLine.ParseResult parse, Option<string[]> calibrate, string? precision)
    {
        var set = parse.GetValue(calibrate);
        if (set is not { Length: > 0 }) return null;
        if (precision is null || !precision.Split(',').Any(p => p.Trim().Equals("int8", StringComparison.OrdinalIgnoreCase)))
            throw new ArgumentException("--calibrate applies to --precision int8 only.");
        foreach (var path in set.Where(p => !Exists(p.StartsWith('@') ? p[1..] : p)))
            throw new FileNotFoundException($"--calibrate {path}: not found (paths are relative to {Environment.CurrentDirectory}).");
        return set;
    }

    /// <summary>--calibration and --calibrate-count as options.</summary>
    internal static FeatureOnnx.Models.CalibrationOptions ParseCalibration(System.CommandLine.ParseResult parse, Option<string> method, Option<int> count)
    {
        var n = parse.GetValue(count);
        if (n <= 0) throw new ArgumentException($"--calibrate-count {n}: must be at least 1.");
        try { return new FeatureOnnx.Models.CalibrationOptions { Count = n }.WithMethod(parse.GetValue(method)!); }
        catch (ArgumentException e) { throw new ArgumentException($"--calibration: {e.Message}", e); }
    }

    /// <summary>--max-file-bytes: bytes, or a number with K, M or G (binary units), within what one .NET array holds.</summary>
    internal static long ParseBytes(string text)
    {
        var shift = text.Length == 0 ? 0 : char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
        var digits = shift == 0 ? text : text[..^1];
        if (!long.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0 || n > FeatureOnnx.Sources.InputFile.LargestMaxFileBytes >> shift)
            throw new ArgumentException($"--max-file-bytes {text}: a number of bytes from 1 to {FeatureOnnx.Sources.InputFile.LargestMaxFileBytes} (2G less a little, the most one .NET array holds), optionally with K, M or G (e.g. 256M).");
        return n << shift;
    }
}
