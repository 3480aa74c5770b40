namespace FeatureOnnx.Models;

/// <summary>
/// Turns what a user types after <c>--model</c> into a manifest: a built-in name (<c>resnet18</c>), a manifest path
/// (<c>DIR/NAME.json</c>), or an ONNX path (<c>NAME.onnx</c>, using <c>NAME.json</c> beside it when present), and finds
/// the ONNX files a manifest points to.
/// </summary>
public sealed class ModelCatalog
{
    /// <summary>The model used when none is named.</summary>
    public const string DefaultModelName = "resnet18";

    private readonly IReadOnlyList<string> _manifestDirectories;
    private readonly IReadOnlyList<string> _nugetRoots;

    /// <summary>Creates a catalog.</summary>
    /// <param name="manifestDirectories">Folders holding built-in manifests. Default: <c>models/</c> next to the app,
    /// then each folder of the <c>FEATUREONNX_MODELS</c> environment variable (':'-separated).</param>
    /// <param name="nugetRoots">NuGet package caches searched for NuGet-shipped files after <c>models/nuget/</c>.
    /// Default: <c>NUGET_PACKAGES</c>, then <c>~/.nuget/packages</c>.</param>
    public ModelCatalog(IEnumerable<string>? manifestDirectories = null, IEnumerable<string>? nugetRoots = null)
    {
        _manifestDirectories = (manifestDirectories ?? DefaultManifestDirectories()).ToList();
        _nugetRoots = (nugetRoots ?? DefaultNuGetRoots()).ToList();
    }

    private static IEnumerable<string> DefaultManifestDirectories()
    {
        yield return Path.Combine(AppContext.BaseDirectory, "models");
        foreach (var dir in (Environment.GetEnvironmentVariable("FEATUREONNX_MODELS") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            yield return dir;
    }

    private static IEnumerable<string> DefaultNuGetRoots()
    {
        var env = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (!string.IsNullOrEmpty(env)) yield return env;
        yield return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }

    /// <summary>Names of the built-in manifests found.</summary>
    public IReadOnlyList<string> BuiltInNames() =>
        _manifestDirectories.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.json"))
            .Select(Path.GetFileNameWithoutExtension).OfType<string>().Distinct().Order().ToList();

    /// <summary>Resolves a model name or path to a validated manifest.</summary>
    /// <param name="spec">A built-in name, a .json manifest or a .onnx file.</param>
    /// <param name="warnings">Receives assumptions made (e.g. a bare ONNX file given the torchvision recipe).</param>
    public ModelManifest Resolve(string spec, ICollection<string>? warnings = null)
    {
        if (spec.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return ModelManifest.Load(spec);
        if (spec.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var sibling = Path.ChangeExtension(spec, ".json");
            if (File.Exists(sibling)) return ModelManifest.Load(sibling);
            var manifest = ManifestForBareOnnx(spec);
            warnings?.Add($"{spec} has no manifest ({Path.GetFileName(sibling)}): assuming torchvision's ImageNet recipe " +
                          "(Resize 256 bilinear, CenterCrop 224, ImageNet mean/std, RGB) and its graph outputs. " +
                          "Write a manifest if the model was trained otherwise.");
            return manifest;
        }
        foreach (var dir in _manifestDirectories)
        {
            var path = Path.Combine(dir, spec + ".json");
            if (File.Exists(path)) return ModelManifest.Load(path);
        }
        var known = BuiltInNames();
        throw new ManifestException(spec,
            $"unknown model. Built-in models: {(known.Count > 0 ? string.Join(", ", known) : "(none found in " + string.Join(", ", _manifestDirectories) + ")")}; " +
            "or pass a manifest (DIR/NAME.json, as written by export-scripts/export.py) or an ONNX file.");
    }

    /// <summary>A manifest for an ONNX file that came without one: torchvision's ImageNet recipe, the graph's own outputs.</summary>
    public static ModelManifest ManifestForBareOnnx(string onnxPath)
    {
        var full = Path.GetFullPath(onnxPath);
        var graph = OnnxGraph.Load(full);
        var inputs = graph.InputNames;
        if (inputs.Count != 1)
            throw new ManifestException(full, $"the graph has {inputs.Count} inputs ({string.Join(", ", inputs)}); write a manifest naming the image input.");
        var tensors = graph.ListTensors();
        var input = tensors.First(t => t.Kind == "input");
        var crop = PreprocessSpec.TorchvisionImageNet.CenterCrop!;
        var manifest = new ModelManifest
        {
            Name = Path.GetFileNameWithoutExtension(full),
            Source = new ModelSource { File = full },
            Input = new ModelInput { Name = input.Name, Shape = [3, crop[0], crop[1]] },
            Preprocess = PreprocessSpec.TorchvisionImageNet,
            Outputs = graph.OutputNames.Select(o => new ModelOutput { Name = SafeName(o), Tensor = o }).ToList(),
            BaseDirectory = Path.GetDirectoryName(full)!,
            ManifestPath = full,
        };
        manifest.Validate();
        return manifest;
    }

    private static string SafeName(string tensor) =>
        string.Concat(tensor.Select(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '_'));

    /// <summary>Finds the ONNX file a source points to.</summary>
    /// <exception cref="FileNotFoundException">Not found; the message lists where it looked and how to fix it.</exception>
    public string LocateFile(ModelSource source, ModelManifest manifest)
    {
        if (source.File is not null)
        {
            var path = Path.IsPathRooted(source.File) ? source.File : Path.Combine(manifest.BaseDirectory, source.File);
            return File.Exists(path) ? path
                : throw new FileNotFoundException($"{manifest.ManifestPath ?? manifest.Name}: ONNX file '{path}' not found. Re-run the export (export-scripts/export.py) or fix 'source.file'.", path);
        }
        var nuget = source.NuGet!;
        var relative = Path.Combine(nuget.Package.ToLowerInvariant(), nuget.Version, nuget.Path);
        var candidates = new[] { Path.Combine(manifest.BaseDirectory, "nuget") }.Concat(_nugetRoots)
            .Select(root => Path.Combine(root, relative)).ToList();
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"{manifest.ManifestPath ?? manifest.Name}: {nuget.Path} of NuGet package {nuget.Package} {nuget.Version} not found. Looked in: " +
                string.Join(", ", candidates) + ". Fix: build FeatureOnnx (it copies the file next to the app), or run 'dotnet restore' so the NuGet cache holds the package.",
                candidates[0]);
    }
}
