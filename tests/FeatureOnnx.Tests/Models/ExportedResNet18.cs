using System.Diagnostics;

namespace FeatureOnnx.Tests.Models;

/// <summary>
/// resnet18 exported by export-scripts/export.py with seeded random weights, in float32 and with --fp16, once per
/// test class, into a temporary folder. Needs /usr/bin/python3 with torch, torchvision and onnx; without them
/// <see cref="Missing"/> says why and the tests skip.
/// </summary>
public sealed class ExportedResNet18 : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly Fixtures.TempDir _dir = new();

    public ExportedResNet18()
    {
        var script = FindExportScript();
        if (script is null) { Missing = "export-scripts/export.py not found above the test assembly"; return; }
        if (!File.Exists(Python)) { Missing = $"{Python} not found"; return; }
        var (code, text) = RunPython("-c \"import torch, torchvision, onnx\"");
        if (code != 0) { Missing = $"{Python} lacks torch, torchvision or onnx: {text.Trim().Split('\n').Last()}"; return; }
        foreach (var extra in new[] { "", " --fp16" })
        {
            (code, text) = RunPython($"\"{script}\" --model resnet18 --weights random:0 --no-save-weights -o \"{_dir.Path}\"{extra}");
            if (code != 0) throw new InvalidOperationException($"export.py{extra} failed ({code}): {text}");
        }
    }

    /// <summary>Why the models could not be made; null when they were.</summary>
    public string? Missing { get; }

    /// <summary>The float32 export's manifest.</summary>
    public string Fp32Manifest => _dir.File("resnet18.json");

    /// <summary>The --fp16 export's manifest.</summary>
    public string Fp16Manifest => _dir.File("resnet18_fp16.json");

    private static string? FindExportScript()
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

    public void Dispose() => _dir.Dispose();
}
