namespace FeatureOnnx.Models;

/// <summary>
/// A model written once at another precision (<c>featureonnx convert</c>): NAME.onnx (every manifest output exposed
/// under its name, flattened where the manifest says, preprocessing graphs composed in, dynamic batch) and NAME.json,
/// a manifest with <c>"precision"</c> set, which extract, bench and inspect take like any other.
/// </summary>
/// <param name="ManifestPath">The manifest written.</param>
/// <param name="OnnxPath">The ONNX file written beside it.</param>
/// <param name="Conversion">The rules applied.</param>
public sealed record ConvertedModel(string ManifestPath, string OnnxPath, PrecisionConversion Conversion)
{
    /// <summary>Converts <paramref name="manifest"/> (a float32 model) to <paramref name="precision"/> and writes it.</summary>
    /// <param name="manifest">The float32 model.</param>
    /// <param name="precision">The precision to write (fp16).</param>
    /// <param name="manifestPath">Where NAME.json goes; NAME.onnx goes beside it.</param>
    /// <param name="catalog">Finds NuGet-shipped files. Default: the app's.</param>
    /// <param name="float16">Rules for fp16. Default: <see cref="Float16Conversion"/>'s.</param>
    /// <param name="int8">Rules and calibrator for int8 (its <see cref="Int8Options.Calibrator"/> is required for int8).</param>
    /// <exception cref="ArgumentException">The model is not float32, or the precision is fp32, or int8 lacks a calibrator.</exception>
    public static ConvertedModel Write(ModelManifest manifest, ModelPrecision precision, string manifestPath, ModelCatalog? catalog = null, Float16Options? float16 = null, Int8Options? int8 = null)
    {
        if (precision == ModelPrecision.Fp32)
            throw new ArgumentException($"model '{manifest.Name}': nothing to convert to fp32; name fp16 or int8.");
        var full = Path.GetFullPath(manifestPath);
        if (!full.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{manifestPath}: the converted model's manifest must be a .json file (its ONNX file goes beside it).");
        var prepared = PreparedModel.Build(manifest, manifest.Outputs.Select(o => o.Name), catalog,
            new PrepareOptions { Precision = precision, Float16 = float16, Int8 = int8 });
        var onnxPath = Path.ChangeExtension(full, ".onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = onnxPath + ".tmp";
        File.WriteAllBytes(tmp, prepared.OnnxBytes);
        File.Move(tmp, onnxPath, overwrite: true);
        var name = Path.GetFileNameWithoutExtension(full);
        var conversion = prepared.Conversion!;
        var note = $"Converted to {PreparedModel.Name(precision)} by featureonnx convert from {manifest.ManifestPath ?? manifest.Name}: " + string.Join("; ", conversion.Describe()) + ".";
        var converted = manifest with
        {
            Name = name,
            Description = $"{manifest.Description} ({PreparedModel.Name(precision)}: {conversion.Form})",
            Source = new ModelSource { File = Path.GetFileName(onnxPath), DynamicBatch = manifest.Source.DynamicBatch },
            Precision = precision,
            // the graph outputs now carry the manifest names, already flattened
            Outputs = manifest.Outputs.Select(o => o with { Tensor = null, Flatten = false }).ToList(),
            Provenance = (manifest.Provenance ?? new Provenance()) with
            {
                Notes = string.IsNullOrEmpty(manifest.Provenance?.Notes) ? note : manifest.Provenance.Notes + " " + note,
            },
            BaseDirectory = Path.GetDirectoryName(full)!,
            ManifestPath = full,
        };
        converted.Validate();
        var tmpManifest = full + ".tmp";
        converted.Save(tmpManifest);
        File.Move(tmpManifest, full, overwrite: true);
        return new ConvertedModel(full, onnxPath, conversion);
    }
}
