using FeatureOnnx.Models;
using FeatureOnnx.Preprocessing;

namespace FeatureOnnx.Benchmarking;

/// <summary>What to benchmark: the model, its outputs and precisions, the inputs, and how to run. Every default is documented.</summary>
public sealed record BenchmarkRequest
{
    /// <summary>Built-in model name, a manifest (DIR/NAME.json) or an ONNX file. Default: <see cref="ModelCatalog.DefaultModelName"/>.</summary>
    public string Model { get; init; } = ModelCatalog.DefaultModelName;

    /// <summary>Outputs to fetch (manifest output names or graph tensors). Default: empty, the manifest's default.</summary>
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>
    /// Precisions to compare; fp32, the reference every row is compared with, is always run and comes first. Default:
    /// null, fp32 alone (a model converted by <see cref="ConvertedModel"/> runs at its own precision only, and refuses a list).
    /// </summary>
    public IReadOnlyList<ModelPrecision>? Precisions { get; init; }

    /// <summary>Image files or folders to use as inputs (the first max(batch size) images; fewer are reused in order). Default: empty, seeded random pixels.</summary>
    public IReadOnlyList<string> Images { get; init; } = [];

    /// <summary>How <see cref="Images"/> JPEGs are decoded. Default: exact.</summary>
    public DecodeScale? DecodeScale { get; init; }

    /// <summary>Seed of the random inputs (without <see cref="Images"/>). Default 42.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>
    /// int8: images to calibrate activation ranges on (folders, @lists or tar shards). Default: null, the first
    /// <see cref="Images"/> (said in a warning); int8 is refused with neither, as random pixels are no calibration set.
    /// </summary>
    public IReadOnlyList<string>? CalibrationImages { get; init; }

    /// <summary>int8: calibration method and image count. Default: <see cref="CalibrationOptions"/>'s.</summary>
    public CalibrationOptions Calibration { get; init; } = new();

    /// <summary>Providers, batch sizes, input paths, iterations and session settings.</summary>
    public BenchmarkOptions Options { get; init; } = new();
}

/// <summary>
/// A benchmark ready to run: the model resolved and prepared at each precision (and for uint8 input when asked), the
/// inputs decoded or drawn. What <c>featureonnx bench</c> does, as two calls: <see cref="Prepare"/>, then <see cref="Run"/>.
/// </summary>
/// <example>
/// <code>
/// var setup = BenchmarkSetup.Prepare(new BenchmarkRequest { Layers = ["pooled"], Options = new() { Providers = [ProviderChoice.Cpu] } });
/// var report = setup.Run();
/// BenchmarkReportWriter.Write(report, "bench-report");
/// </code>
/// </example>
public sealed class BenchmarkSetup
{
    private BenchmarkSetup(BenchmarkRequest request, ModelManifest manifest, IReadOnlyList<BenchmarkModel> models, BenchmarkInputs inputs, IReadOnlyList<string> warnings)
    {
        Request = request;
        Manifest = manifest;
        Models = models;
        Inputs = inputs;
        Warnings = warnings;
    }

    /// <summary>The request prepared.</summary>
    public BenchmarkRequest Request { get; }

    /// <summary>The model's manifest.</summary>
    public ModelManifest Manifest { get; }

    /// <summary>The model at each precision, fp32 (or the converted model's own precision) first.</summary>
    public IReadOnlyList<BenchmarkModel> Models { get; }

    /// <summary>The inputs every configuration runs on.</summary>
    public BenchmarkInputs Inputs { get; }

    /// <summary>Things the user should know about the model (from the catalog and the preparation).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Resolves and prepares the model and the inputs; nothing is timed yet.</summary>
    /// <exception cref="SettingException">A converted model with <see cref="BenchmarkRequest.Precisions"/> set.</exception>
    public static BenchmarkSetup Prepare(BenchmarkRequest request, ModelCatalog? catalog = null)
    {
        catalog ??= new ModelCatalog();
        var warnings = new List<string>();
        var manifest = catalog.Resolve(request.Model, warnings);
        var precisions = Precisions(request, manifest);
        var cache = new ConversionCache();
        var uint8 = request.Options.InputPaths.Contains(BenchmarkInputPath.Uint8);
        var int8 = precisions.Contains(ModelPrecision.Int8) && manifest.Precision == ModelPrecision.Fp32 ? Calibrate(request, manifest, warnings) : null;
        var models = precisions.Select(p => new BenchmarkModel(
            PreparedModel.Build(manifest, request.Layers, catalog, new PrepareOptions { Precision = p, Cache = cache, Int8 = int8 }),
            uint8 ? PreparedModel.Build(manifest, request.Layers, catalog, new PrepareOptions { Uint8Input = true, Precision = p, Cache = cache, Int8 = int8 }) : null)).ToList();
        warnings.AddRange(models[0].Model.Warnings);
        var needed = request.Options.BatchSizes.Max();
        var inputs = request.Images.Count > 0
            ? BenchmarkInputs.FromImages(manifest, request.Images, needed, decodeScale: request.DecodeScale)
            : BenchmarkInputs.Random(manifest, needed, request.Seed);
        return new BenchmarkSetup(request, manifest, models, inputs, warnings);
    }

    /// <summary>Times every configuration (<see cref="ProviderBenchmark"/>); a cancelled run returns what finished, status "interrupted".</summary>
    public BenchmarkReport Run(IProgress<BenchmarkProgress>? progress = null, CancellationToken cancellation = default) =>
        new ProviderBenchmark().Run(Models, Inputs, Request.Options, progress, cancellation);

    /// <summary>The int8 conversion's calibrator: on the calibration images, else on the benchmark's images (said in a warning).</summary>
    private static Int8Options Calibrate(BenchmarkRequest request, ModelManifest manifest, List<string> warnings)
    {
        if (request.CalibrationImages is not { Count: > 0 } && request.Images.Count == 0)
            throw new SettingException($"{nameof(BenchmarkRequest)}.{nameof(BenchmarkRequest.CalibrationImages)}",
                "int8 needs calibration images: a few hundred images like those the model will see (random pixels are no calibration set).");
        return new Int8Options
        {
            Calibrator = FeatureOnnx.Pipeline.ImageCalibrator.ForRun(manifest, request.CalibrationImages, request.Images, "the benchmark's input images",
                request.Calibration, request.Options.Session.IntraOpThreads, warnings),
        };
    }

    /// <summary>fp32 first, then the others asked for; a converted model alone at its own precision.</summary>
    private static IReadOnlyList<ModelPrecision> Precisions(BenchmarkRequest request, ModelManifest manifest)
    {
        if (manifest.Precision != ModelPrecision.Fp32)
        {
            if (request.Precisions is not null)
                throw new SettingException($"{nameof(BenchmarkRequest)}.{nameof(BenchmarkRequest.Precisions)}",
                    $"model '{manifest.Name}' is stored at {PreparedModel.Name(manifest.Precision)} and runs at that precision only; " +
                    "leave the precisions unset, or bench the float32 model it was converted from at fp32 and fp16.");
            return [manifest.Precision];
        }
        return [ModelPrecision.Fp32, .. (request.Precisions ?? []).Where(p => p != ModelPrecision.Fp32).Distinct()];
    }
}
