using System.CommandLine;
using FeatureOnnx.Models;

namespace FeatureOnnx.Cli;

/// <summary><c>featureonnx export-e2e --model M -o M.e2e.onnx</c>: the model with its preprocessing as graph operators.</summary>
internal static class ExportE2eCommand
{
    public static Command Create()
    {
        var model = SessionOptionGroup.ModelOption("Built-in model name, a manifest (DIR/NAME.json) or an ONNX file; its manifest's preprocessing is what gets built in.");
        var layers = new Option<string?>("--layers", "-l")
        {
            Description = "Comma-separated outputs (manifest names or TENSOR[=alias]). Default: the manifest's default (resnet18: pooled).",
        };
        var exposeCrop = new Option<bool>("--expose-crop") { Description = "Also output 'crop': the 8-bit centre crop (HWC RGB) before normalisation, for parity checks." };
        var batched = new Option<bool>("--batched")
        {
            Description = "Take a batch per call: input 'images' (a sequence of encoded files) and 'exif_orientations' (int64 [N]); a Loop preprocesses each image, the backbone runs once.",
        };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the end-to-end ONNX file.", Required = true };
        var command = new Command("export-e2e",
            "Write an end-to-end ONNX model: encoded JPEG/PNG bytes in (input 'image', uint8 1-D; optional 'exif_orientation'), features out. " +
            "Decoding is onnxruntime-extensions' DecodeImage; resize (antialiased, opset 18), crop and normalisation are ONNX operators built from the manifest. " +
            "Runs on ONNX Runtime with the extensions library from any language; 'extract --e2e' runs it on files.")
        {
            model, layers, exposeCrop, batched, output,
        };
        command.SetAction(parse => CliErrors.Guard(() =>
        {
            var catalog = new ModelCatalog();
            var warnings = new List<string>();
            var manifest = catalog.Resolve(parse.GetValue(model)!, warnings);
            var requested = parse.GetValue(layers) is { } l ? l.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : null;
            var e2e = EndToEndModelBuilder.Build(manifest, requested, catalog, new EndToEndOptions { ExposeCrop = parse.GetValue(exposeCrop), Batched = parse.GetValue(batched) });
            var target = parse.GetValue(output)!;
            var tmp = target + ".partial";
            File.WriteAllBytes(tmp, e2e.OnnxBytes);
            File.Move(tmp, target, overwrite: true);
            foreach (var w in warnings.Concat(e2e.Warnings)) Console.Error.WriteLine($"warning: {w}");
            var p = manifest.Preprocess;
            Console.WriteLine($"wrote {target} ({e2e.OnnxBytes.Length / 1e6:0.0} MB): {(parse.GetValue(batched) ? "a batch of image files (Loop)" : "image bytes")} -> DecodeImage -> " +
                              (p.ResizeShorter is { } s ? $"Resize shorter side {s} ({p.Interpolation.ToString().ToLowerInvariant()}, antialias) -> " : "") +
                              $"CenterCrop {manifest.Input.Height}x{manifest.Input.Width} -> normalise -> {manifest.Name} -> " +
                              string.Join(", ", e2e.Outputs.Select(o => o.Name).Concat(parse.GetValue(exposeCrop) ? ["crop"] : [])));
            if (e2e.OpsetChanges.Count > 0)
                Console.WriteLine($"backbone raised to opset {EndToEndModelBuilder.Opset}: {e2e.OpsetChanges.Count} node(s) rewritten ({e2e.OpsetChanges[0]}{(e2e.OpsetChanges.Count > 1 ? ", ..." : "")})");
            return CliErrors.Ok;
        }));
        return command;
    }
}
