using System.CommandLine;
using FeatureOnnx.Pipeline;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx merge OUT1 OUT2 ... -o OUT</c>: combine shard outputs.</summary>
internal static class MergeCommand
{
    public static Command Create()
    {
        var sources = new Argument<string[]>("folders") { Description = "Output folders of 'extract --shard I/N' runs (completed).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "The merged output folder.", Required = true };
        var command = new Command("merge",
            "Merge shard outputs into one folder: every LAYER.npy, index.csv and errors.csv, rows sorted by path, which equals one unsharded run over a folder.")
        {
            sources, output,
        };
        command.SetAction(parse => CliErrors.Guard(() =>
        {
            var result = ShardMerge.Merge(parse.GetValue(sources)!, parse.GetValue(output)!);
            Console.WriteLine($"merged {result.Sources.Count} folders into {parse.GetValue(output)}: {result.Extracted} rows, {result.Failed} errors; " +
                              string.Join(", ", result.Layers.Select(p => $"{p.Key}.npy [{string.Join(",", p.Value)}]")));
            return CliErrors.Ok;
        }));
        return command;
    }
}
