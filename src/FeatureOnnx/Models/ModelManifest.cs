using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace FeatureOnnx.Models;

/// <summary>
/// Everything FeatureOnnx needs to know about one model: where its ONNX comes from, what its input looks like,
/// how an image becomes that input, and which tensors a caller may ask for. Stored as <c>onnx-models/NAME.json</c>
/// (or next to an exported ONNX file). Preprocessing and runtime read this; nothing else hard-codes a model.
/// </summary>
/// <example>
/// <code>
/// var manifest = ModelManifest.Load("onnx-models/resnet18.json");
/// var spec = manifest.Preprocess; // resize 256, crop 224, bilinear, ...
/// </code>
/// </example>
public sealed record ModelManifest
{
    /// <summary>Short name, used in run.json and as the catalog key (e.g. <c>resnet18</c>).</summary>
    public required string Name { get; init; }

    /// <summary>One or two sentences for humans: architecture, training data, what the outputs mean.</summary>
    public string? Description { get; init; }

    /// <summary>Where the ONNX file comes from and how it is edited at load time.</summary>
    public required ModelSource Source { get; init; }

    /// <summary>The graph input that receives the preprocessed image batch.</summary>
    public required ModelInput Input { get; init; }

    /// <summary>How one decoded image becomes one slot of <see cref="Input"/>.</summary>
    public required PreprocessSpec Preprocess { get; init; }

    /// <summary>The tensors a caller may ask for, by name. Order is the order <c>inspect</c> shows.</summary>
    public required IReadOnlyList<ModelOutput> Outputs { get; init; }

    /// <summary>Outputs extracted when the caller names none. Default: the first entry of <see cref="Outputs"/>.</summary>
    public IReadOnlyList<string>? DefaultOutputs { get; init; }

    /// <summary>Origin, licence and how the weights were made.</summary>
    public Provenance? Provenance { get; init; }

    /// <summary>
    /// Precision of the weights and arithmetic inside the graph (export.py --fp16 writes <c>fp16</c>). The graph input
    /// and outputs stay float32 either way. Default: fp32.
    /// </summary>
    public ModelPrecision Precision { get; init; } = ModelPrecision.Fp32;

    /// <summary>The folder relative paths in <see cref="Source"/> are resolved against (the manifest's own folder).</summary>
    [JsonIgnore]
    public string BaseDirectory { get; init; } = Environment.CurrentDirectory;

    /// <summary>The file this manifest was read from, for error messages; null when built in code.</summary>
    [JsonIgnore]
    public string? ManifestPath { get; init; }

    /// <summary>The output names used when the caller asks for none.</summary>
    public IReadOnlyList<string> ResolveDefaultOutputs() =>
        DefaultOutputs is { Count: > 0 } ? DefaultOutputs : [Outputs[0].Name];

    /// <summary>Finds an output by name, or fails with the list of valid names.</summary>
    public ModelOutput GetOutput(string name) =>
        Outputs.FirstOrDefault(o => string.Equals(o.Name, name, StringComparison.Ordinal))
        ?? throw new ManifestException(ManifestPath ?? Name,
            $"model '{Name}' has no output '{name}'. Valid outputs: {string.Join(", ", Outputs.Select(o => o.Name))}. " +
            "Use 'featureonnx inspect' to list every tensor of the graph; any of them can be named as TENSOR or TENSOR=alias.");

    /// <summary>JSON options used for every manifest: camelCase, enums as strings, comments allowed.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        TypeInfoResolver = JsonMetadata.Default,
    };

    internal static JsonTypeInfo<ModelManifest> TypeInfo => (JsonTypeInfo<ModelManifest>)JsonOptions.GetTypeInfo(typeof(ModelManifest));

    /// <summary>Reads and validates a manifest file.</summary>
    /// <exception cref="ManifestException">The file is missing, not valid JSON, or breaks a rule; the message names the field and the fix.</exception>
    public static ModelManifest Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new ManifestException(full, "file not found.");
        ModelManifest? manifest;
        try
        {
            using var stream = File.OpenRead(full);
            manifest = JsonSerializer.Deserialize(stream, TypeInfo);
        }
        catch (JsonException e)
        {
            throw new ManifestException(full, $"not a valid manifest: {e.Message}", e);
        }
        if (manifest is null)
            throw new ManifestException(full, "the file is empty or 'null'.");
        manifest = manifest with { BaseDirectory = Path.GetDirectoryName(full)!, ManifestPath = full };
        manifest.Validate();
        return manifest;
    }

    /// <summary>Writes the manifest as indented JSON.</summary>
    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, TypeInfo) + "\n");

    /// <summary>Checks the rules JSON cannot express. Throws <see cref="ManifestException"/> naming the field.</summary>
    public void Validate()
    {
        var where = ManifestPath ?? Name;
        void Fail(string msg) => throw new ManifestException(where, msg);
        if (string.IsNullOrWhiteSpace(Name)) Fail("'name' is empty.");
        if (Source.File is null && Source.NuGet is null)
            Fail("'source' needs 'file' (a path relative to the manifest) or 'nuget' {package, version, path}.");
        if (Source.File is not null && Source.NuGet is not null)
            Fail("'source' has both 'file' and 'nuget'; keep one.");
        if (string.IsNullOrWhiteSpace(Input.Name)) Fail("'input.name' is empty; 'featureonnx inspect MODEL.onnx' lists the graph inputs.");
        if (Input.Shape is not { Count: 3 } || Input.Shape.Any(d => d <= 0))
            Fail("'input.shape' must be three positive sizes without the batch axis, e.g. [3, 224, 224] for NCHW.");
        var p = Preprocess;
        if (p.Mean.Count != 3 || p.Std.Count != 3) Fail("'preprocess.mean' and 'preprocess.std' need exactly three values (one per channel, in RGB order).");
        if (p.Std.Any(s => s == 0)) Fail("'preprocess.std' has a zero.");
        if (p.PixelDivisor <= 0) Fail("'preprocess.pixelDivisor' must be positive (255 for torchvision's ToTensor, 1 for models that take 0..255).");
        if (p.ResizeShorter is <= 0) Fail("'preprocess.resizeShorter' must be positive or absent.");
        if (p.CenterCrop is { } crop && (crop.Count != 2 || crop[0] <= 0 || crop[1] <= 0))
            Fail("'preprocess.centerCrop' must be [height, width].");
        var (h, w) = Input.Layout == TensorLayout.Nchw ? (Input.Shape[1], Input.Shape[2]) : (Input.Shape[0], Input.Shape[1]);
        var channels = Input.Layout == TensorLayout.Nchw ? Input.Shape[0] : Input.Shape[2];
        if (channels != 3) Fail($"'input.shape' has {channels} channels; FeatureOnnx feeds RGB images (3 channels).");
        if (p.CenterCrop is { } c && (c[0] != h || c[1] != w))
            Fail($"'preprocess.centerCrop' [{c[0]}, {c[1]}] differs from the input's spatial size [{h}, {w}].");
        if (p.CenterCrop is null && p.ResizeShorter is null)
            Fail("'preprocess' needs 'centerCrop' (or 'resizeShorter' plus 'centerCrop') so that every image reaches the input size.");
        if (Outputs.Count == 0) Fail("'outputs' is empty: name at least one tensor to extract.");
        var dup = Outputs.GroupBy(o => o.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) Fail($"output name '{dup.Key}' appears twice.");
        foreach (var o in Outputs)
        {
            if (string.IsNullOrWhiteSpace(o.Name) || o.Name.IndexOfAny(['/', '\\', ',', '=']) >= 0)
                Fail($"output name '{o.Name}' is empty or holds one of / \\ , = (names become file names).");
        }
        foreach (var d in DefaultOutputs ?? []) GetOutput(d);
    }
}

/// <summary>Where the ONNX bytes come from. Exactly one of <see cref="File"/> and <see cref="NuGet"/>.</summary>
public sealed record ModelSource
{
    /// <summary>Path of the ONNX file, relative to the manifest's folder (or absolute).</summary>
    public string? File { get; init; }

    /// <summary>A file inside a NuGet package, found next to the app (models/nuget/...) or in the NuGet cache.</summary>
    public NuGetFile? NuGet { get; init; }

    /// <summary>
    /// Optional preprocessing graph run before the model: its single output feeds the model's single input, and its
    /// input becomes the composed model's input. Used to fold a shipped preprocessing ONNX (e.g. ML.NET's
    /// RGB-to-BGR-minus-mean-image step) into the backbone, exactly.
    /// </summary>
    public ModelSource? Prepend { get; init; }

    /// <summary>Make axis 0 of every input/output a symbolic batch dimension at load time. Default: true.</summary>
    public bool DynamicBatch { get; init; } = true;
}

/// <summary>A file shipped inside a NuGet package.</summary>
public sealed record NuGetFile
{
    /// <summary>Package id, e.g. <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>.</summary>
    public required string Package { get; init; }

    /// <summary>Exact package version.</summary>
    public required string Version { get; init; }

    /// <summary>Path inside the package, with forward slashes.</summary>
    public required string Path { get; init; }
}

/// <summary>Memory layout of the input tensor.</summary>
public enum TensorLayout
{
    /// <summary>[N, C, H, W] (PyTorch's layout).</summary>
    Nchw,
    /// <summary>[N, H, W, C].</summary>
    Nhwc,
}

/// <summary>Precision of a model's weights and compute (fp32, fp16 in JSON).</summary>
[JsonConverter(typeof(CamelCaseEnumConverter<ModelPrecision>))]
public enum ModelPrecision
{
    /// <summary>32-bit float.</summary>
    Fp32,
    /// <summary>16-bit float (IEEE half); Cast nodes at the graph edges keep the input and outputs float32.</summary>
    Fp16,
    /// <summary>8-bit integer (static QDQ quantisation for the CPU: int8 weights, uint8 activations calibrated on images); input and outputs float32.</summary>
    Int8,
}

/// <summary>Element type of the input tensor.</summary>
public enum TensorElementType
{
    /// <summary>32-bit float, normalised per <see cref="PreprocessSpec"/>.</summary>
    Float32,
}

/// <summary>The graph input fed with images.</summary>
public sealed record ModelInput
{
    /// <summary>Graph input name.</summary>
    public required string Name { get; init; }

    /// <summary>Tensor layout. Default NCHW.</summary>
    public TensorLayout Layout { get; init; } = TensorLayout.Nchw;

    /// <summary>Element type. Default float32.</summary>
    public TensorElementType ElementType { get; init; } = TensorElementType.Float32;

    /// <summary>Shape without the batch axis, in <see cref="Layout"/> order (e.g. [3, 224, 224]).</summary>
    public required IReadOnlyList<int> Shape { get; init; }

    /// <summary>Spatial height.</summary>
    [JsonIgnore] public int Height => Layout == TensorLayout.Nchw ? Shape[1] : Shape[0];

    /// <summary>Spatial width.</summary>
    [JsonIgnore] public int Width => Layout == TensorLayout.Nchw ? Shape[2] : Shape[1];
}

/// <summary>Resampling filter, with PIL's definitions (support, kernel) so results match Pillow's <c>Image.resize</c>.</summary>
public enum Interpolation
{
    /// <summary>PIL NEAREST.</summary>
    Nearest,
    /// <summary>PIL BILINEAR: triangle filter, antialiased when shrinking (torchvision's default).</summary>
    Bilinear,
    /// <summary>PIL BICUBIC: Keys cubic with a = -0.5 (EfficientNet's weights use it).</summary>
    Bicubic,
    /// <summary>PIL BOX.</summary>
    Box,
    /// <summary>PIL HAMMING.</summary>
    Hamming,
    /// <summary>PIL LANCZOS (a = 3).</summary>
    Lanczos,
}

/// <summary>Channel order the model expects in its input.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue (torchvision).</summary>
    Rgb,
    /// <summary>Blue, green, red (Caffe/CNTK/OpenCV models).</summary>
    Bgr,
}

/// <summary>
/// The torchvision eval transform, as data: PIL decode, <c>convert('RGB')</c>, Resize(shorter side) with a PIL
/// filter, CenterCrop with torchvision's rounding, ToTensor (divide by <see cref="PixelDivisor"/>), Normalize.
/// Value written to the tensor: <c>(pixel / PixelDivisor - Mean[c]) / Std[c]</c>, computed in float32 as torch does.
/// </summary>
public sealed record PreprocessSpec
{
    /// <summary>Resize so the shorter side has this many pixels, the longer one <c>int(size * long / short)</c>; null: no resize.</summary>
    public int? ResizeShorter { get; init; }

    /// <summary>Filter used by the resize. Default bilinear (torchvision's default).</summary>
    public Interpolation Interpolation { get; init; } = Interpolation.Bilinear;

    /// <summary>[height, width] of the centre crop; must equal the input's spatial size. Pads with zeros when the image is smaller, as torchvision does.</summary>
    public IReadOnlyList<int>? CenterCrop { get; init; }

    /// <summary>8-bit values are divided by this first: 255 for torchvision's ToTensor, 1 for models fed 0..255.</summary>
    public float PixelDivisor { get; init; } = 255f;

    /// <summary>Per-channel mean, in RGB order, on the divided scale.</summary>
    public IReadOnlyList<float> Mean { get; init; } = [0f, 0f, 0f];

    /// <summary>Per-channel standard deviation, in RGB order, on the divided scale.</summary>
    public IReadOnlyList<float> Std { get; init; } = [1f, 1f, 1f];

    /// <summary>Channel order written to the tensor. Mean and std stay in RGB order regardless.</summary>
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;

    /// <summary>Apply the EXIF orientation tag before anything else (PIL's <c>ImageOps.exif_transpose</c>). Default true.</summary>
    public bool ApplyExifOrientation { get; init; } = true;

    /// <summary>
    /// torchvision's ImageNet eval recipe: Resize(256, bilinear) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet
    /// mean/std). The one place these numbers are written; used for bare ONNX files that come without a manifest.
    /// </summary>
    public static PreprocessSpec TorchvisionImageNet { get; } = new()
    {
        ResizeShorter = 256,
        Interpolation = Interpolation.Bilinear,
        CenterCrop = [224, 224],
        PixelDivisor = 255f,
        Mean = [0.485f, 0.456f, 0.406f],
        Std = [0.229f, 0.224f, 0.225f],
        ChannelOrder = ChannelOrder.Rgb,
    };
}

/// <summary>A tensor a caller may extract.</summary>
public sealed record ModelOutput
{
    /// <summary>The name callers use (<c>--layers</c>), and the .npy file name.</summary>
    public required string Name { get; init; }

    /// <summary>The graph tensor it comes from. Default: same as <see cref="Name"/>.</summary>
    public string? Tensor { get; init; }

    /// <summary>Flatten to [N, prod(rest)] inside the graph (e.g. a [N,512,1,1] pool becomes [N,512]).</summary>
    public bool Flatten { get; init; }

    /// <summary>Shape without the batch axis, after flattening; informative, checked at run time.</summary>
    public IReadOnlyList<long>? Shape { get; init; }

    /// <summary>What the tensor is, for humans.</summary>
    public string? Description { get; init; }

    /// <summary>The graph tensor name.</summary>
    [JsonIgnore] public string TensorName => Tensor ?? Name;
}

/// <summary>Where a model comes from and under which terms.</summary>
public sealed record Provenance
{
    /// <summary>Who made the weights and how (framework, export tool, training data).</summary>
    public string? Origin { get; init; }

    /// <summary>SPDX licence id of the weights/graph.</summary>
    public string? License { get; init; }

    /// <summary>Link or path to the licence text.</summary>
    public string? LicenseUrl { get; init; }

    /// <summary>Anything else a user should know (e.g. differences from the torchvision model).</summary>
    public string? Notes { get; init; }
}

/// <summary>A manifest that cannot be used; the message names the file, the field and the fix.</summary>
public sealed class ManifestException(string where, string message, Exception? inner = null)
    : Exception($"{where}: {message}", inner)
{
    /// <summary>The manifest file (or model name) concerned.</summary>
    public string Where { get; } = where;
}
