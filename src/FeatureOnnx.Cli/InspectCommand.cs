using System.CommandLine;
using FeatureOnnx.Models;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx inspect MODEL</c>: every tensor a user can ask for.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model")
        {
            Description = "An ONNX file, a manifest (.json) or a built-in model name (resnet18).",
        };
        var all = new Option<bool>("--all")
        {
            Description = "For a manifest or built-in model, list every tensor of the graph, not only the manifest's named outputs.",
        };
        var precision = new Option<string?>("--precision")
        {
            Description = "fp16: also list the rules 'extract --precision fp16' would apply to this model (which ops run in float16, which stay float32). " +
                          "(int8 depends on calibration images: write it with 'featureonnx convert MODEL --precision int8 --calibrate DIR -o NAME.json' and inspect NAME.json.)",
        };
        precision.AcceptOnlyFromAmong("fp32", "fp16");
        var command = new Command("inspect",
            "List a model's inputs, outputs and every intermediate tensor with its shape where known. " +
            "Any tensor listed can be extracted with 'extract --layers TENSOR[=alias]' or exposed with 'expose'.")
        {
            model, all, precision,
        };
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(all), parse.GetValue(precision)));
        return command;
    }

    private static int Run(string spec, bool all, string? precision)
    {
        return CliErrors.Guard(() =>
        {
            if (spec.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) && !File.Exists(Path.ChangeExtension(spec, ".json")) && precision is null)
            {
                PrintTensors(OnnxGraph.Load(spec));
                return 0;
            }
            var catalog = new ModelCatalog();
            var manifest = catalog.Resolve(spec);
            Console.WriteLine($"model     {manifest.Name}   ({manifest.ManifestPath})");
            if (manifest.Description is not null) Console.WriteLine($"          {manifest.Description}");
            Console.WriteLine($"input     {manifest.Input.Name} {manifest.Input.Layout.ToString().ToUpperInvariant()} {manifest.Input.ElementType.ToString().ToLowerInvariant()} [N,{string.Join(",", manifest.Input.Shape)}]");
            var p = manifest.Preprocess;
            Console.WriteLine($"preproc   resize shorter side {p.ResizeShorter?.ToString() ?? "none"} ({p.Interpolation.ToString().ToLowerInvariant()}), center crop {string.Join("x", p.CenterCrop ?? [])}, " +
                              $"/{p.PixelDivisor}, mean [{string.Join(", ", p.Mean)}], std [{string.Join(", ", p.Std)}], {p.ChannelOrder.ToString().ToUpperInvariant()}");
            var network = OnnxGraph.Load(catalog.LocateFile(manifest.Source, manifest));
            Console.WriteLine($"weights   {network.WeightStorage ?? "as stored by the model's source (no conversion)"}");
            Console.WriteLine($"precision {PreparedModel.Name(manifest.Precision)}");
            foreach (var line in PrecisionConversion.ReadFrom(network)?.Describe() ?? []) Console.WriteLine($"  {line}");
            if (precision is not null && ExtractCommand.ParsePrecision(precision) != manifest.Precision)
            {
                var converted = PreparedModel.Build(manifest, manifest.Outputs.Select(o => o.Name), catalog, new PrepareOptions { Precision = ExtractCommand.ParsePrecision(precision) });
                Console.WriteLine($"at --precision {precision} ({converted.Conversion?.Form}), every output exposed:");
                foreach (var line in converted.Conversion?.Describe() ?? []) Console.WriteLine($"  {line}");
            }
            Console.WriteLine("outputs   (default: " + string.Join(",", manifest.ResolveDefaultOutputs()) + ")");
            foreach (var o in manifest.Outputs)
                Console.WriteLine($"  {o.Name,-12} [N,{string.Join(",", o.Shape ?? [])}]  <- {o.TensorName}{(o.Flatten ? " (flattened)" : "")}  {o.Description}");
            if (all)
            {
                if (manifest.Source.Prepend is { } pre) network.Prepend(OnnxGraph.Load(catalog.LocateFile(pre, manifest)));
                Console.WriteLine();
                PrintTensors(network);
            }
            return 0;
        });
    }

    private static void PrintTensors(OnnxGraph graph)
    {
        var tensors = graph.ListTensors();
        Console.WriteLine($"{graph.Origin}: opset {graph.DefaultOpset}, {tensors.Count(t => t.Kind == "input")} input(s), {tensors.Count(t => t.Kind == "output")} output(s), {tensors.Count(t => t.Kind == "intermediate")} intermediate tensors");
        if (graph.WeightStorage is { } storage) Console.WriteLine($"weights: {storage}");
        if (PrecisionConversion.ReadFrom(graph) is { } conversion)
            Console.WriteLine($"precision: {PreparedModel.Name(conversion.Precision)} ({conversion.Form}): {string.Join("; ", conversion.Describe())}");
        var width = Math.Min(48, tensors.Max(t => t.Name.Length));
        Console.WriteLine($"{"kind",-12} {"tensor".PadRight(width)} {"op",-20} {"type",-8} shape");
        foreach (var t in tensors)
            Console.WriteLine($"{t.Kind,-12} {t.Name.PadRight(width)} {t.Producer,-20} {t.ElementType ?? "?",-8} {t.ShapeText}");
    }
}
