using System.Diagnostics;

namespace FeatureOnnx.Tests.Models;

/// <summary>Runs export-scripts/export.py with /usr/bin/python3 (torch, torchvision, onnx) for test fixtures.</summary>
internal static class ExportScript
{
    private const string Python = "/usr/bin/python3";

    /// <summary>Why export.py cannot run here, or null when it can.</summary>
    public static string? Missing()
    {
        if (Find() is null) return "export-scripts/export.py not found above the test assembly";
        if (!File.Exists(Python)) return $"{Python} not found";
        var (code, text) = RunPython("-c \"import torch, torchvision, onnx\"");
        return code != 0 ? $"{Python} lacks torch, torchvision or onnx: {text.Trim().Split('\n').Last()}" : null;
    }

    /// <summary>Exports <paramref name="model"/> with seeded random weights into <paramref name="folder"/>; returns its manifest path.</summary>
    public static string Export(string model, string folder, string extra = "")
    {
        var (code, text) = RunPython($"\"{Find()}\" --model {model} --weights random:0 --no-save-weights -o \"{folder}\"{extra}");
        if (code != 0) throw new InvalidOperationException($"export.py --model {model}{extra} failed ({code}): {text}");
        return Path.Combine(folder, model + ".json");
    }

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var script = Path.Combine(dir.FullName, "export-scripts", "export.py");
            if (File.Exists(script)) return script;
        }
        return null;
    }

    private static (int Code, string Output) RunPython(string arguments)
    {
        var info = new ProcessStartInfo(Python, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr);
    }
}

/// <summary>
/// efficientnet_b0 and vgg16 exported by export.py with seeded random weights, once per test class. efficientnet_b0's
/// BatchNorm statistics are estimated on the test photos, as a trained network's match natural images: estimated on
/// noise, its activations reach 1e4 on photos and every rounding is amplified (its float16 twin then drops to cosine 0.990).
/// </summary>
public sealed class ExportedBackbones : IDisposable
{
    private readonly Fixtures.TempDir _dir = new();
    private readonly Dictionary<string, string> _manifests = [];

    public ExportedBackbones()
    {
        Missing = ExportScript.Missing();
        if (Missing is not null) return;
        _manifests["efficientnet_b0"] = ExportScript.Export("efficientnet_b0", _dir.Path, $" --calibration-images \"{Fixtures.PathOf("photos")}\"");
        _manifests["vgg16"] = ExportScript.Export("vgg16", _dir.Path);
    }

    /// <summary>Why the models could not be made; null when they were.</summary>
    public string? Missing { get; }

    /// <summary>The manifest of an exported model.</summary>
    public string Manifest(string model) => _manifests[model];

    public void Dispose() => _dir.Dispose();
}
