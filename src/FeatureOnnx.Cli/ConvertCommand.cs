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
            Description = "fp16: float16 weights and compute, float32 reductions, exponentials and normalisations (the rules of 'extract --precision fp16'); " +
                          "int8: int8 weights per channel and uint8 activations calibrated on --calibrate images, for the CPU (the rules of 'extract --precision int8').",
            Required = true,
        };
        precision.AcceptOnlyFromAmong("fp16", "int8");
        var (calibrate, calibration, calibrateCount) = ExtractCommand.CalibrationOptions();
        var output = new Option<string>("--output", "-o") { Description = "The manifest to write (NAME.json); NAME.onnx is written beside it.", Required = true };
        var command = new Command("convert",
            "Convert a float32 model to another precision once and write it as ONNX + manifest, to pass to extract, bench or inspect as --model NAME.json. " +
            "The manifest records the precision; the ONNX file records the rules applied ('featureonnx inspect NAME.json' lists them).")
        {
            model, precision, calibrate, calibration, calibrateCount, output,
        };
        command.SetAction(parse => CliErrors.Guard(() =>
        {
            var catalog = new ModelCatalog();
            var warnings = new List<string>();
            var manifest = catalog.Resolve(parse.GetValue(model)!, warnings);
            foreach (var warning in warnings) Console.Error.WriteLine($"warning: {warning}");
            var target = ExtractCommand.ParsePrecision(parse.GetValue(precision)!);
            var set = ExtractCommand.CalibrationInputs(parse, calibrate, parse.GetValue(precision));
            Int8Options? int8 = null;
            if (target == ModelPrecision.Int8)
                int8 = new Int8Options
                {
                    Calibrator = new FeatureOnnx.Pipeline.ImageCalibrator(manifest, set ?? throw new ArgumentException("--precision int8 needs --calibrate DIR: a few hundred images like those the model will see."),
                        ExtractCommand.ParseCalibration(parse, calibration, calibrateCount)),
                };
            var written = ConvertedModel.Write(manifest, target, parse.GetValue(output)!, catalog, int8: int8);
            Console.WriteLine($"wrote {written.ManifestPath} and {Path.GetFileName(written.OnnxPath)} ({new FileInfo(written.OnnxPath).Length / 1e6:0.0} MB), precision {PreparedModel.Name(written.Conversion.Precision)}:");
            foreach (var line in written.Conversion.Describe()) Console.WriteLine($"  {line}");
            return 0;
        }));
        return command;
    }
}
