using System.CommandLine;
using FeatureOnnx.Models;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx expose MODEL.onnx --outputs a,b=alias -o OUT.onnx</c>: the hook replacement for any ONNX file.</summary>
internal static class ExposeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "The ONNX file to edit." };
        var outputs = new Option<string>("--outputs")
        {
            Description = "Comma-separated tensors to add as graph outputs: TENSOR or TENSOR=alias ('featureonnx inspect' lists them).",
            Required = true,
        };
        var dynamicBatch = new Option<bool>("--dynamic-batch") { Description = "Make axis 0 of every input and output a symbolic batch dimension N." };
        var only = new Option<bool>("--only") { Description = "Keep only the listed outputs and prune the graph to what they need (faster when they are early layers)." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the edited ONNX file.", Required = true };
        var command = new Command("expose",
            "Add intermediate tensors of an ONNX graph as named outputs (what forward hooks do in PyTorch), optionally with a dynamic batch axis.")
        {
            model, outputs, dynamicBatch, only, output,
        };
        command.SetAction(parse => CliErrors.Guard(() =>
        {
            var path = parse.GetValue(model)!;
            var graph = OnnxGraph.Load(path);
            var requests = OutputRequest.ParseList(parse.GetValue(outputs)!);
            if (requests.Count == 0) throw new ArgumentException("--outputs names no tensor.");
            if (parse.GetValue(dynamicBatch))
                foreach (var warning in graph.MakeBatchDynamic())
                    Console.Error.WriteLine($"warning: {warning}");
            graph.ExposeOutputs(requests, replaceOutputs: parse.GetValue(only));
            var pruned = parse.GetValue(only) ? graph.Prune() : 0;
            var target = parse.GetValue(output)!;
            graph.Save(target);
            Console.WriteLine($"wrote {target}: outputs {string.Join(", ", graph.OutputNames)}" + (pruned > 0 ? $"; pruned {pruned} nodes no output needs" : ""));
            return 0;
        }));
        return command;
    }
}
