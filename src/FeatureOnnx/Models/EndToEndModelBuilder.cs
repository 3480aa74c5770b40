using System.Globalization;
using System.Text.Json;
using Onnx;

namespace FeatureOnnx.Models;

/// <summary>Options for <see cref="EndToEndModelBuilder"/>. Every default is what <c>featureonnx export-e2e</c> writes.</summary>
public sealed record EndToEndOptions
{
    /// <summary>Also output the 8-bit centre crop (HWC RGB, before normalisation) as <see cref="EndToEndModel.CropOutput"/>, for parity checks. Default: false.</summary>
    public bool ExposeCrop { get; init; }

    /// <summary>
    /// Resize's coordinate_transformation_mode. Default <c>half_pixel</c>: Pillow samples at pixel centres,
    /// <c>(x + 0.5) * scale</c>; measured against the PIL references it is the closest mode (tests/FeatureOnnx.Tests/Models/EndToEndModelTests.cs).
    /// </summary>
    public string CoordinateTransformationMode { get; init; } = "half_pixel";

    /// <summary>
    /// Take a batch: input <see cref="EndToEndModel.BatchImagesInput"/> (a sequence of encoded files) and
    /// <see cref="EndToEndModel.BatchOrientationsInput"/> (int64 [N]); a Loop preprocesses each image and the backbone
    /// runs once on [N, ...]. Default: false (one file per call).
    /// </summary>
    public bool Batched { get; init; }
}

/// <summary>An end-to-end ONNX model: encoded image bytes in, features out.</summary>
public sealed record EndToEndModel
{
    /// <summary>Name of the input that takes the encoded file (uint8, 1-D: the bytes of one JPEG or PNG file).</summary>
    public const string ImageInput = "image";

    /// <summary>Name of the optional input with the EXIF orientation tag (int64 scalar, default 1: pixels as stored).</summary>
    public const string OrientationInput = "exif_orientation";

    /// <summary>Input of a batched model: a sequence of uint8 1-D tensors, one encoded file each.</summary>
    public const string BatchImagesInput = "images";

    /// <summary>Input of a batched model: the EXIF Orientation tag of each image (int64 [N]; 1 = as stored).</summary>
    public const string BatchOrientationsInput = "exif_orientations";

    /// <summary>Name of the crop output (uint8 [H, W, 3], RGB; [N, H, W, 3] when batched) when <see cref="EndToEndOptions.ExposeCrop"/> is set.</summary>
    public const string CropOutput = "crop";

    /// <summary>Metadata key holding the manifest the model was built from (JSON).</summary>
    public const string ManifestMetadataKey = "featureonnx.manifest";

    /// <summary>Domain of the onnxruntime-extensions operators.</summary>
    public const string ExtensionsDomain = "com.microsoft.extensions";

    /// <summary>The manifest the model was built from.</summary>
    public required ModelManifest Manifest { get; init; }

    /// <summary>The model, opset 18 plus <see cref="ExtensionsDomain"/> version 1.</summary>
    public required byte[] OnnxBytes { get; init; }

    /// <summary>Feature outputs, in request order (the crop output, when asked for, comes after them).</summary>
    public required IReadOnlyList<ModelOutput> Outputs { get; init; }

    /// <summary>Backbone nodes rewritten to raise its opset (one line each).</summary>
    public IReadOnlyList<string> OpsetChanges { get; init; } = [];

    /// <summary>Things the user should know.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Puts a model's preprocessing in front of its backbone as ONNX operators, so that a deployment needs only ONNX
/// Runtime and the onnxruntime-extensions library:
/// <c>DecodeImage</c> (com.microsoft.extensions; JPEG and PNG) -> grey to RGB -> EXIF orientation (optional input) ->
/// <c>Resize</c> of the shorter side (opset 18, antialias, torchvision's <c>int(size * long / short)</c>) -> centre crop
/// (torchvision's round-half-to-even offsets, zero padding) -> Cast, Div, Sub, Div (the manifest's ToTensor and
/// Normalize) -> channel order -> NHWC to NCHW (batch of 1) -> the backbone.
/// The backbone's default opset is raised to 18 by <see cref="OnnxOpsetUpgrade"/>, which refuses operators whose
/// meaning could change.
/// </summary>
/// <example>
/// <code>
/// var model = EndToEndModelBuilder.Build(new ModelCatalog().Resolve("resnet18"));
/// File.WriteAllBytes("resnet18.e2e.onnx", model.OnnxBytes);
/// </code>
/// </example>
public static class EndToEndModelBuilder
{
    /// <summary>The default-domain opset of every end-to-end model (Resize's antialias appeared in 18).</summary>
    public const int Opset = 18;

    private const string Prefix = "e2e/";

    /// <summary>Builds the end-to-end model for <paramref name="requested"/> outputs (as <see cref="PreparedModel.Build"/> takes them).</summary>
    /// <exception cref="ManifestException">The preprocessing has no ONNX equivalent (e.g. a Lanczos resize).</exception>
    /// <exception cref="InvalidDataException">The backbone uses an operator that cannot be moved to opset 18 safely.</exception>
    public static EndToEndModel Build(ModelManifest manifest, IEnumerable<string>? requested = null, ModelCatalog? catalog = null, EndToEndOptions? options = null)
    {
        options ??= new EndToEndOptions();
        var prepared = PreparedModel.Build(manifest, requested, catalog);
        var graph = OnnxGraph.FromBytes(prepared.OnnxBytes, manifest.ManifestPath ?? manifest.Name);
        var model = graph.Proto;
        if (model.OpsetImport.Any(o => o.Domain == EndToEndModel.ExtensionsDomain))
            throw new InvalidDataException($"{graph.Origin}: already imports {EndToEndModel.ExtensionsDomain}; is it an end-to-end model already?");
        var changes = OnnxOpsetUpgrade.Upgrade(model, Opset, graph.Origin);
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = EndToEndModel.ExtensionsDomain, Version = 1 });

        var g = model.Graph;
        var taken = g.Node.SelectMany(n => n.Output).Concat(g.Input.Select(i => i.Name)).Concat(g.Initializer.Select(i => i.Name)).ToHashSet();
        foreach (var name in new[] { EndToEndModel.ImageInput, EndToEndModel.OrientationInput, EndToEndModel.BatchImagesInput, EndToEndModel.BatchOrientationsInput, EndToEndModel.CropOutput })
            if (taken.Contains(name))
                throw new InvalidDataException($"{graph.Origin}: the backbone already has a tensor named '{name}'.");

        var pre = new Preprocessing(manifest, options);
        var backboneInput = manifest.Input.Name;
        OnnxDim[] cropDims = [manifest.Input.Height, manifest.Input.Width, 3];
        var oldInput = g.Input.First(i => i.Name == backboneInput);
        g.Input.Remove(oldInput);
        g.ValueInfo.Add(oldInput);
        List<NodeProto> front;
        if (!options.Batched)
        {
            pre.Initializers.Add(OnnxProto.Int64s(EndToEndModel.OrientationInput, [1], [])); // overridable default
            pre.Build(EndToEndModel.ImageInput, EndToEndModel.OrientationInput, backboneInput, options.ExposeCrop ? EndToEndModel.CropOutput : null, keepBatchAxis: true);
            front = pre.Nodes;
            g.Input.Insert(0, OnnxProto.Value(EndToEndModel.ImageInput, TensorProto.Types.DataType.Uint8, ["num_bytes"]));
            g.Input.Insert(1, OnnxProto.Value(EndToEndModel.OrientationInput, TensorProto.Types.DataType.Int64, []));
            if (options.ExposeCrop) g.Output.Add(OnnxProto.Value(EndToEndModel.CropOutput, TensorProto.Types.DataType.Uint8, cropDims));
        }
        else
        {
            front = pre.BuildLoop(backboneInput, options.ExposeCrop ? EndToEndModel.CropOutput : null);
            g.Input.Insert(0, new ValueInfoProto
            {
                Name = EndToEndModel.BatchImagesInput,
                Type = new TypeProto { SequenceType = new TypeProto.Types.Sequence { ElemType = OnnxProto.Value("", TensorProto.Types.DataType.Uint8).Type } },
            });
            g.Input.Insert(1, OnnxProto.Value(EndToEndModel.BatchOrientationsInput, TensorProto.Types.DataType.Int64, ["N"]));
            if (options.ExposeCrop) g.Output.Add(OnnxProto.Value(EndToEndModel.CropOutput, TensorProto.Types.DataType.Uint8, ["N", .. cropDims]));
        }
        var nodes = front.Concat(g.Node).ToList();
        g.Node.Clear();
        g.Node.AddRange(nodes);
        g.Initializer.AddRange(pre.Initializers);
        model.DocString = options.Batched
            ? $"FeatureOnnx end-to-end model '{manifest.Name}', batched: input '{EndToEndModel.BatchImagesInput}' is a sequence of uint8 1-D tensors (the bytes of JPEG or PNG files); " +
              $"'{EndToEndModel.BatchOrientationsInput}' (int64 [N]) their EXIF Orientation tags (1 = as stored). Needs onnxruntime-extensions (DecodeImage). " +
              $"Outputs: {string.Join(", ", g.Output.Select(o => o.Name))} (batch axis N)."
            : $"FeatureOnnx end-to-end model '{manifest.Name}': input '{EndToEndModel.ImageInput}' is the bytes of one JPEG or PNG file (uint8, 1-D); " +
              $"optional input '{EndToEndModel.OrientationInput}' (int64 scalar, default 1) is its EXIF Orientation tag. Needs onnxruntime-extensions (DecodeImage). " +
              $"Outputs: {string.Join(", ", g.Output.Select(o => o.Name))} (batch axis of 1).";
        model.MetadataProps.Add(new StringStringEntryProto { Key = EndToEndModel.ManifestMetadataKey, Value = JsonSerializer.Serialize(manifest, ModelManifest.TypeInfo) });
        model.ProducerName = "featureonnx export-e2e";
        return new EndToEndModel
        {
            Manifest = manifest,
            OnnxBytes = graph.ToBytes(),
            Outputs = prepared.Outputs,
            OpsetChanges = changes,
            Warnings = prepared.Warnings,
        };
    }

    /// <summary>The preprocessing nodes, built in order; every name carries <see cref="Prefix"/>.</summary>
    private sealed class Preprocessing(ModelManifest manifest, EndToEndOptions options)
    {
        private readonly GraphBuilder _b = new(Prefix);
        public List<NodeProto> Nodes => _b.Nodes;
        public List<TensorProto> Initializers => _b.Initializers;

        /// <summary>
        /// A Loop over the <see cref="EndToEndModel.BatchImagesInput"/> sequence whose body is <see cref="Build"/>
        /// on one image; its stacked outputs are the backbone's [N, ...] input (and the [N, H, W, 3] crops).
        /// Returns the outer nodes; the body's constants go to <see cref="Initializers"/> (outer scope).
        /// </summary>
        public List<NodeProto> BuildLoop(string output, string? cropOutput)
        {
            var (iteration, condIn, condOut) = (Name("iteration"), Name("cond_in"), Name("cond_out"));
            var (image, orientation, slot, crop) = (Name("image"), Name("orientation"), Name("slot"), Name("crop"));
            Op("SequenceAt", [EndToEndModel.BatchImagesInput, iteration], output: image);
            Op("Gather", [EndToEndModel.BatchOrientationsInput, iteration], output: orientation);
            Op("Identity", [condIn], output: condOut);
            Build(image, orientation, slot, cropOutput is null ? null : crop, keepBatchAxis: false);
            var body = new GraphProto { Name = Prefix + "per_image" };
            body.Node.AddRange(Nodes);
            body.Input.Add(OnnxProto.Value(iteration, TensorProto.Types.DataType.Int64, []));
            body.Input.Add(OnnxProto.Value(condIn, TensorProto.Types.DataType.Bool, []));
            body.Output.Add(OnnxProto.Value(condOut, TensorProto.Types.DataType.Bool, []));
            body.Output.Add(OnnxProto.Value(slot, TensorProto.Types.DataType.Float));
            if (cropOutput is not null) body.Output.Add(OnnxProto.Value(crop, TensorProto.Types.DataType.Uint8));
            Nodes.Clear();
            var count = Op("SequenceLength", [EndToEndModel.BatchImagesInput]);
            var loop = _b.Node("Loop", [count, ""], cropOutput is null ? [output] : [output, cropOutput], "", OnnxProto.Graph("body", body));
            return [.. Nodes, loop];
        }

        /// <summary>One image: <paramref name="imageInput"/> (encoded bytes) to <paramref name="output"/> ([1, C, H, W], or [C, H, W] without the batch axis).</summary>
        public void Build(string imageInput, string orientationInput, string output, string? cropOutput, bool keepBatchAxis)
        {
            var spec = manifest.Preprocess;
            var (cropH, cropW) = (manifest.Input.Height, manifest.Input.Width);
            var decoded = Op("DecodeImage", [imageInput], domain: EndToEndModel.ExtensionsDomain, attributes: [Str("color_space", "rgb")]);
            // DecodeImage gives [H, W, 1] for a greyscale JPEG: broadcast to three channels (a no-op on RGB).
            var rgb = Op("Expand", [decoded, I64("three_channels", [1, 1, 3])]);
            // From here on NHWC with a batch of 1: ORT's antialiased cubic Resize takes 4-D input only.
            var image = Op("Unsqueeze", [Orient(rgb, orientationInput), I64("batch_axis", [0])]);

            if (spec.ResizeShorter is { } shorter)
            {
                var (mode, cubic) = spec.Interpolation switch
                {
                    Interpolation.Bilinear => ("linear", (float?)null),
                    Interpolation.Bicubic => ("cubic", -0.5f), // PIL's bicubic is Keys' kernel with a = -0.5
                    _ => throw new ManifestException(manifest.ManifestPath ?? manifest.Name,
                        $"'preprocess.interpolation' {spec.Interpolation} has no ONNX Resize equivalent; end-to-end models support bilinear and bicubic."),
                };
                var shape = Op("Shape", [image]);
                var h = Op("Slice", [shape, I64("h_start", [1]), I64("h_end", [2])]);
                var w = Op("Slice", [shape, I64("w_start", [2]), I64("w_end", [3])]);
                var size = I64("resize_shorter", [shorter]);
                // torchvision: the shorter side becomes `size`, the longer int(size * long / short) (integer division is exact here).
                var longer = Op("Div", [Op("Mul", [size, Op("Max", [h, w])]), Op("Min", [h, w])]);
                var wide = Op("Greater", [w, h]);
                var sizes = Op("Concat", [Op("Where", [wide, size, longer]), Op("Where", [wide, longer, size])], attributes: [Int("axis", 0)]);
                var attrs = new List<AttributeProto>
                {
                    Str("mode", mode), Int("antialias", 1), Ints("axes", [1, 2]),
                    Str("coordinate_transformation_mode", options.CoordinateTransformationMode),
                };
                if (cubic is { } a) attrs.Add(OnnxProto.Float("cubic_coeff_a", a));
                image = Op("Resize", [image, "", "", sizes], attributes: [.. attrs]);
            }

            // Centre crop as torchvision does it: zero padding to the crop size first when smaller, then offsets
            // round((size - crop) / 2) with round-half-to-even: q + (d mod 2) * (q mod 2) with q = d div 2.
            var crop = I64("crop_size", [cropH, cropW]);
            var hw = Op("Slice", [Op("Shape", [image]), I64("hw_start", [1]), I64("hw_end", [3])]);
            var alwaysLarger = spec.ResizeShorter is { } s && s >= Math.Max(cropH, cropW);
            if (!alwaysLarger)
            {
                var zero = I64("zero2", [0, 0]);
                var two = I64("two2", [2, 2]);
                var deficit = Op("Max", [Op("Sub", [crop, hw]), zero]);
                var before = Op("Div", [deficit, two]);
                var after = Op("Div", [Op("Add", [deficit, I64("one2", [1, 1])]), two]);
                var noPad = I64("zero1", [0]);
                var pads = Op("Concat", [noPad, before, noPad, noPad, after, noPad], attributes: [Int("axis", 0)]);
                image = Op("Pad", [image, pads, U8Scalar("pad_value", 0)], attributes: [Str("mode", "constant")]);
                hw = Op("Add", [hw, deficit]);
            }
            var d = Op("Sub", [hw, crop]);
            var twos = I64("two_2", [2, 2]);
            var q = Op("Div", [d, twos]);
            var offset = Op("Add", [q, Op("Mul", [Op("Mod", [d, twos]), Op("Mod", [q, twos])])]);
            var cropped = Op("Slice", [image, offset, Op("Add", [offset, crop]), I64("crop_axes", [1, 2])]);
            if (cropOutput is not null) Op("Squeeze", [cropped, I64("crop_batch_axis", [0])], output: cropOutput);

            // ToTensor + Normalize in float32, in torch's order (the nodes the uint8 input graph uses too).
            var x = _b.Normalize(cropped, spec, manifest.Input.Layout);
            Op(keepBatchAxis ? "Identity" : "Squeeze", keepBatchAxis ? [x] : [x, I64("slot_batch_axis", [0])], output: output);
        }

        /// <summary>PIL's exif_transpose from the optional orientation input: transpose for 5..8, then flips.</summary>
        private string Orient(string rgb, string orientation)
        {
            var valid = Op("And", [Op("GreaterOrEqual", [orientation, I64("one", [1], [])]), Op("LessOrEqual", [orientation, I64("eight", [8], [])])]);
            var index = Op("Reshape", [Op("Where", [valid, orientation, I64("one_again", [1], [])]), I64("shape1", [1])]);
            var transposed = Name("transposed");
            var thenBranch = Branch("transpose", rgb, "Transpose", [Ints("perm", [1, 0, 2])]);
            var elseBranch = Branch("keep", rgb, "Identity", []);
            Nodes.Add(_b.Node("If", [Op("Greater", [orientation, I64("four", [4], [])])], [transposed], "",
                OnnxProto.Graph("then_branch", thenBranch), OnnxProto.Graph("else_branch", elseBranch)));
            //                               orientation:  0  1  2   3   4  5  6   7   8
            var stepY = Op("Gather", [I64("flip_y", [1, 1, 1, -1, -1, 1, 1, -1, -1]), index]);
            var stepX = Op("Gather", [I64("flip_x", [1, 1, -1, -1, 1, 1, -1, -1, 1]), index]);
            var steps = Op("Concat", [stepY, stepX], attributes: [Int("axis", 0)]);
            var backwards = Op("Less", [steps, I64("zero_steps", [0, 0])]);
            var starts = Op("Where", [backwards, I64("minus_one2", [-1, -1]), I64("zero_start2", [0, 0])]);
            var ends = Op("Where", [backwards, I64("min2", [long.MinValue, long.MinValue]), I64("max2", [long.MaxValue, long.MaxValue])]);
            return Op("Slice", [transposed, starts, ends, I64("yx_axes", [0, 1]), steps]);
        }

        private GraphProto Branch(string name, string input, string op, AttributeProto[] attributes)
        {
            var output = Name(name + "_out");
            var graph = new GraphProto { Name = Prefix + name };
            graph.Node.Add(_b.Node(op, [input], [output], "", attributes));
            graph.Output.Add(OnnxProto.Value(output, TensorProto.Types.DataType.Uint8));
            return graph;
        }

        private string Name(string hint) => _b.Name(hint);

        private string Op(string opType, string[] inputs, string domain = "", AttributeProto[]? attributes = null, string? output = null) =>
            _b.Op(opType, inputs, domain, attributes, output);

        private string I64(string name, long[] values, long[]? dims = null) => _b.Int64s(name, values, dims);

        private string U8Scalar(string name, byte value) => _b.Uint8Scalar(name, value);

        private static AttributeProto Str(string name, string value) => OnnxProto.String(name, value);

        private static AttributeProto Int(string name, long value) => OnnxProto.Int(name, value);

        private static AttributeProto Ints(string name, long[] values) => OnnxProto.Ints(name, values);
    }
}
