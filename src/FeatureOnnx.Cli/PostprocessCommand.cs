using System.CommandLine;
using FeatureOnnx.PostProcessing;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx postprocess IN.npy [--pool avg|max|flatten] [--pca MODEL] [--l2] -o OUT.npy</c>.</summary>
internal static class PostprocessCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "Float32 .npy: vectors [N, D] or spatial maps [N, C, H, W]." };
        var pool = new Option<string>("--pool")
        {
            Description = "Spatial maps to vectors: avg (global average, [N,C]), max (global max, [N,C]), flatten ([N,C*H*W]) or none.",
            DefaultValueFactory = _ => "none",
        };
        pool.AcceptOnlyFromAmong("avg", "max", "flatten", "none");
        var pca = new Option<string?>("--pca") { Description = "Apply a model from 'featureonnx pca fit' after pooling." };
        var l2 = new Option<bool>("--l2") { Description = "Scale each output row to unit L2 norm (last step; zero rows stay zero)." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the result (float32 .npy).", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the output file if it exists." };
        var command = new Command("postprocess", "Pool or flatten spatial maps, apply a PCA, L2-normalise: in that order, streaming the file in chunks.")
        {
            input, pool, pca, l2, output, overwrite,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(CliErrors.Guard(() =>
        {
            var options = new PostProcessOptions
            {
                Pooling = SpatialPooling.Parse(parse.GetValue(pool)!),
                Pca = parse.GetValue(pca) is { } path ? PcaModel.Load(path) : null,
                L2 = parse.GetValue(l2),
            };
            if (options.IsIdentity) throw new ArgumentException("nothing to do: give --pool avg|max, --pca MODEL or --l2.");
            var target = parse.GetValue(output)!;
            CliErrors.RefuseExisting(target, parse.GetValue(overwrite));
            var rows = FeaturePostProcessor.ProcessFile(options, parse.GetValue(input)!, target, cancellation: cancellation);
            Console.WriteLine($"wrote {target}: {rows} rows");
            return CliErrors.Ok;
        })));
        return command;
    }
}
