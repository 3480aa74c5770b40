using FeatureOnnx.Models;

namespace FeatureOnnx.Tests.Models;

/// <summary>
/// resnet18 exported by export-scripts/export.py with seeded random weights, in float32, and converted to fp16 by
/// <see cref="ConvertedModel.Write"/> (what <c>featureonnx convert</c> does), once per test class, into a temporary folder. Needs /usr/bin/python3 with torch, torchvision and onnx; without them
/// <see cref="Missing"/> says why and the tests skip.
/// </summary>
public sealed class ExportedResNet18 : IDisposable
{
    private readonly Fixtures.TempDir _dir = new();

    public ExportedResNet18()
    {
        Missing = ExportScript.Missing();
        if (Missing is not null) return;
        ExportScript.Export("resnet18", _dir.Path);
        ConvertedModel.Write(ModelManifest.Load(Fp32Manifest), ModelPrecision.Fp16, Fp16Manifest);
    }

    /// <summary>Why the models could not be made; null when they were.</summary>
    public string? Missing { get; }

    /// <summary>The float32 export's manifest.</summary>
    public string Fp32Manifest => _dir.File("resnet18.json");

    /// <summary>The fp16 conversion's manifest.</summary>
    public string Fp16Manifest => _dir.File("resnet18_fp16.json");

    public void Dispose() => _dir.Dispose();
}
