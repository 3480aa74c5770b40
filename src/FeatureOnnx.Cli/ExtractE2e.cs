using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Cli;

/// <summary><c>extract --e2e</c>: the extract options mapped onto <see cref="EndToEndExtraction"/>, workers being this program.</summary>
internal static class ExtractE2e
{
    /// <summary>Worker processes when --workers is not given: each holds the model (about 400 MB for resnet18).</summary>
    public static int DefaultWorkers => Math.Min(Environment.ProcessorCount, 4);

    public static Task<ExtractionResult> RunAsync(ExtractionOptions options, TimeSpan timeout, bool workersGiven, IProgress<ExtractionProgress> progress, CancellationToken cancellation)
    {
        if (!options.Model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--e2e needs --model FILE.onnx written by 'featureonnx export-e2e' (got '{options.Model}').");
        if (options.TensorsIn is not null)
            throw new ArgumentException("--e2e takes encoded image files; --tensors-in does not apply.");
        if (timeout <= TimeSpan.Zero) throw new ArgumentException("--timeout must be positive.");
        return new EndToEndExtraction().RunAsync(new EndToEndExtractionOptions
        {
            Inputs = options.Inputs,
            OutputDirectory = options.OutputDirectory,
            Model = options.Model,
            Layers = options.Layers,
            PostProcess = options.PostProcess,
            Worker = E2eWorkerCommand.Self(),
            Workers = workersGiven ? options.DecodeWorkers : DefaultWorkers,
            BatchSize = options.BatchSize,
            ItemTimeout = timeout,
            MaxPixels = options.MaxPixels,
            MaxFileBytes = options.MaxFileBytes,
            Overwrite = options.Overwrite,
            Resume = options.Resume,
            Session = options.Session,
            Shard = options.Shard,
        }, progress, cancellation);
    }
}
