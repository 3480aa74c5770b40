using System.CommandLine;
using FeatureOnnx.Models;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx convert MODEL --precision fp16 -o NAME.json</c>: a model written once at another precision.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "A float32 model: built-in name (resnet18), manifest (DIR/NAME.json) or ONNX file." };
        var precision = new Option<string>("--precision")
        {
            Description = "fp16: float16 weights and compute, float32 reductions, exponentials and normalisations (the rules of 'extract --precision fp16').",
            Required = true,
        };
        precision.AcceptOnlyFromAmong("fp16");
        var output = new Option<string>("--output", "-o") { Description = "The manifest to write (NAME.json); NAME.onnx is written beside it.", Required = true };
        var command = new Command("convert",
            "Convert a float32 model to another precision once and write it as ONNX + manifest, to pass to extract, bench or inspect as --model NAME.json. " +
            "The manifest records the precision; the ONNX file records the rules applied ('featureonnx inspect NAME.json' lists them).")
        {
            model, precision, output,
        };
        command.SetAction(parse => CliErrors.Guard(() =>
        {
            var catalog = new ModelCatalog();
            var warnings = new List<string>();
            var manifest = catalog.Resolve(parse.GetValue(model)!, warnings);
            foreach (var warning in warnings) Console.Error.WriteLine($"warning: {warning}");
            var written = ConvertedModel.Write(manifest, ExtractCommand.ParsePrecision(parse.GetValue(precision)!), parse.GetValue(output)!, catalog);
            Console.WriteLine($"wrote {written.ManifestPath} and {Path.GetFileName(written.OnnxPath)} ({new FileInfo(written.OnnxPath).Length / 1e6:0.0} MB), precision {PreparedModel.Name(written.Conversion.Precision)}:");
            foreach (var line in written.Conversion.Describe()) Console.WriteLine($"  {line}");
            return 0;
        }));
        return command;
    }
}
