using System.CommandLine;
using FeatureOnnx.Models;

namespace FeatureOnnx.Cli;

/// <summary>
/// <c>featureonnx expose MODEL.onnx --outputs a,b=alias -o OUT.onnx</c>: the hook replacement for any ONNX file; also
/// <c>--weights float16</c>, which halves a model's file (what the deployment build does to the built-in model).
/// </summary>
internal static class ExposeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "The ONNX file to edit." };
        var outputs = new Option<string>("--outputs")
        {
            Description = "Comma-separated tensors to add as graph outputs: TENSOR or TENSOR=alias ('featureonnx inspect' lists them).",
        };
        var weights = new Option<string?>("--weights")
        {
            Description = "float16: store float32 weight tensors (1024+ values) as float16, cast back to float32 when the session is built: half the file, " +
                          "float32 arithmetic, weights rounded to 11 significant bits (features move by about 1e-3 relative; measured in docs/deployment.md).",
        };
        weights.AcceptOnlyFromAmong("float16");
        var dynamicBatch = new Option<bool>("--dynamic-batch") { Description = "Make axis 0 of every input and output a symbolic batch dimension N." };
        var only = new Option<bool>("--only") { Description = "Keep only the listed outputs and prune the graph to what they need (faster when they are early layers)." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the edited ONNX file.", Required = true };
        var command = new Command("expose",
            "Add intermediate tensors of an ONNX graph as named outputs (what forward hooks do in PyTorch), optionally with a dynamic batch axis " +
            "and float16 weight storage.")
        {
            model, outputs, dynamicBatch, only, weights, output,
        };
        command.SetAction(parse => CliErrors.Guard(() =>
        {
            var path = parse.GetValue(model)!;
            var graph = OnnxGraph.Load(path);
            var requests = parse.GetValue(outputs) is { } list ? OutputRequest.ParseList(list) : [];
            var float16 = parse.GetValue(weights) == "float16";
            if (requests.Count == 0 && !float16) throw new ArgumentException("--outputs names no tensor (and no --weights conversion was asked for).");
            if (requests.Count == 0 && parse.GetValue(only)) throw new ArgumentException("--only needs --outputs.");
            if (parse.GetValue(dynamicBatch))
                foreach (var warning in graph.MakeBatchDynamic())
                    Console.Error.WriteLine($"warning: {warning}");
            if (requests.Count > 0) graph.ExposeOutputs(requests, replaceOutputs: parse.GetValue(only));
            var pruned = parse.GetValue(only) ? graph.Prune() : 0;
            var stored = float16 ? graph.StoreWeightsAsFloat16() : null;
            var target = parse.GetValue(output)!;
            graph.Save(target);
            Console.WriteLine($"wrote {target}: outputs {string.Join(", ", graph.OutputNames)}" + (pruned > 0 ? $"; pruned {pruned} nodes no output needs" : "") +
                (stored is null ? "" : $"; {stored.Converted} weight tensors stored as float16 ({stored.BytesBefore / 1e6:0.0} MB -> {stored.BytesAfter / 1e6:0.0} MB, max relative rounding {stored.MaxRelativeRounding:0.0e0}), {stored.Kept} small ones kept float32"));
            return 0;
        }));
        return command;
    }
}
