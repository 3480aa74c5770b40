namespace FeatureOnnx.Models;

/// <summary>Options for <see cref="PreparedModel.Build"/>. Every default keeps the graph's own input.</summary>
public sealed record PrepareOptions
{
    /// <summary>
    /// Put <see cref="Uint8InputGraph"/> in front of the model: the session is fed uint8 [N, H, W, 3] RGB crops and
    /// normalises them inside the graph, with values identical to the float32 path. Default: false (float32 input as
    /// the manifest describes it).
    /// </summary>
    public bool Uint8Input { get; init; }

    /// <summary>
    /// Precision to run at: <see cref="ModelPrecision.Fp16"/> converts the float32 graph with <see cref="Float16Conversion"/>
    /// when the session is prepared. Default: null, the manifest's own precision (fp32 unless the model was converted).
    /// </summary>
    public ModelPrecision? Precision { get; init; }

    /// <summary>Rules for <see cref="ModelPrecision.Fp16"/> (e.g. <see cref="Float16Form.Twin"/> for CPU accuracy checks). Default: <see cref="Float16Conversion"/>'s.</summary>
    public Float16Options? Float16 { get; init; }

    /// <summary>Rules and calibration for <see cref="ModelPrecision.Int8"/>; its <see cref="Int8Options.Calibrator"/> is required for int8 (its key finds a cached graph; it calibrates only when there is none).</summary>
    public Int8Options? Int8 { get; init; }

    /// <summary>Where converted graphs are kept between runs. Default: null, converted every time (the CLI passes a <see cref="ConversionCache"/>).</summary>
    public ConversionCache? Cache { get; init; }
}

/// <summary>
/// A model ready for a session: its manifest, the ONNX bytes edited for the requested outputs (composed, dynamic
/// batch, outputs exposed under their names, pruned to what they need), and the outputs in request order.
/// </summary>
public sealed record PreparedModel
{
    /// <summary>The manifest the model came from.</summary>
    public required ModelManifest Manifest { get; init; }

    /// <summary>The edited graph, ready for ONNX Runtime.</summary>
    public required byte[] OnnxBytes { get; init; }

    /// <summary>The requested outputs, in request order; their names are the graph output names.</summary>
    public required IReadOnlyList<ModelOutput> Outputs { get; init; }

    /// <summary>Nodes removed because no requested output needs them.</summary>
    public int PrunedNodeCount { get; init; }

    /// <summary>How the weights are stored when not as trained (<see cref="OnnxGraph.WeightStorage"/>, e.g. float16 in the deployment build); null otherwise.</summary>
    public string? WeightStorage { get; init; }

    /// <summary>Precision the graph runs at (the manifest's, or the one converted to).</summary>
    public ModelPrecision Precision { get; init; } = ModelPrecision.Fp32;

    /// <summary>How the graph was converted to <see cref="Precision"/> (rules applied); null for a graph run as stored.</summary>
    public PrecisionConversion? Conversion { get; init; }

    /// <summary>The cache file the converted graph was read from or written to; null when not cached.</summary>
    public string? CachedAt { get; init; }

    /// <summary>The graph input the session feeds: the manifest's input, or the uint8 one of <see cref="Uint8Input"/>.</summary>
    public string InputName => Uint8Input ? Uint8InputGraph.InputName(Manifest.Input) : Manifest.Input.Name;

    /// <summary>
    /// True: the input is uint8 [N, H, W, 3] RGB crops (before normalisation), normalised inside the graph.
    /// False: the manifest's float32 input, normalised by the caller.
    /// </summary>
    public bool Uint8Input { get; init; }

    /// <summary>Shape of one input slot (no batch axis): [H, W, 3] for <see cref="Uint8Input"/>, else the manifest's.</summary>
    public IReadOnlyList<int> InputSlotShape => Uint8Input ? [Manifest.Input.Height, Manifest.Input.Width, 3] : Manifest.Input.Shape;

    /// <summary>Things the user should know (fixed-batch reshapes, assumptions).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Names the manifest's outputs first (what most users want), then the graph tensors closest to <paramref name="name"/>.</summary>
    private static string UnknownOutputMessage(ModelManifest manifest, string name, OnnxGraph graph, ModelCatalog catalog)
    {
        var spec = catalog.BuiltInNames().Contains(manifest.Name) && catalog.Resolve(manifest.Name).ManifestPath == manifest.ManifestPath
            ? manifest.Name
            : manifest.ManifestPath ?? manifest.Name;
        var distance = manifest.Outputs.Select(o => EditDistance.Between(o.Name, name, ignoreCase: true)).DefaultIfEmpty(int.MaxValue).Min();
        var close = manifest.Outputs.Where(o => distance <= 2 && EditDistance.Between(o.Name, name, ignoreCase: true) == distance).Select(o => $"'{o.Name}'").ToList();
        return $"model '{manifest.Name}' has no output named '{name}'{(close.Count == 0 ? "" : $" (did you mean {string.Join(" or ", close)}?)")}. " +
               $"Its outputs: {string.Join(", ", manifest.Outputs.Select(o => o.Name))}. " +
               $"Any graph tensor also works as TENSOR[=alias]; the closest names: {string.Join(", ", graph.ClosestTensorNames(name, 5))} " +
               $"(OnnxGraph.ListTensors lists all {graph.TensorCount} of {spec}).";
    }

    /// <summary>
    /// Builds the graph for <paramref name="requested"/> outputs. Each entry is a manifest output name, or any graph
    /// tensor as <c>TENSOR</c> or <c>TENSOR=alias</c> (hooks on any layer). Empty: the manifest's default outputs.
    /// </summary>
    public static PreparedModel Build(ModelManifest manifest, IEnumerable<string>? requested = null, ModelCatalog? catalog = null, PrepareOptions? options = null)
    {
        catalog ??= new ModelCatalog();
        options ??= new PrepareOptions();
        var names = requested?.Where(s => !string.IsNullOrWhiteSpace(s)).ToList() ?? [];
        if (names.Count == 0) names = manifest.ResolveDefaultOutputs().ToList();

        var outputs = new List<ModelOutput>();
        foreach (var name in names)
        {
            var known = manifest.Outputs.FirstOrDefault(o => o.Name == name);
            if (known is not null) { outputs.Add(known); continue; }
            var request = OutputRequest.ParseList(name).Single();
            outputs.Add(new ModelOutput { Name = request.Alias, Tensor = request.Tensor, Description = "tensor named on the command line" });
        }
        var dup = outputs.GroupBy(o => o.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"output '{dup.Key}' requested twice.");

        // A graph prepared before from the same files, manifest, outputs and options is read back instead of rebuilt.
        var cacheKey = options.Cache is not null && options.Precision is null or ModelPrecision.Fp32 && manifest.Precision == ModelPrecision.Fp32
            ? PreparedKey(manifest, outputs, options, catalog) : null;
        if (cacheKey is not null && options.Cache!.TryGetPrepared(manifest, cacheKey, out var cachedBytes, out var facts))
            return new PreparedModel
            {
                Manifest = manifest,
                OnnxBytes = cachedBytes,
                Outputs = outputs,
                PrunedNodeCount = facts.PrunedNodeCount,
                WeightStorage = facts.WeightStorage,
                Uint8Input = options.Uint8Input,
                Warnings = facts.Warnings,
            };

        var graph = OnnxGraph.Load(catalog.LocateFile(manifest.Source, manifest));
        if (manifest.Source.Prepend is { } pre)
            graph.Prepend(OnnxGraph.Load(catalog.LocateFile(pre, manifest)));
        var warnings = new List<string>();
        if (manifest.Source.DynamicBatch)
            warnings.AddRange(graph.MakeBatchDynamic());
        if (!graph.InputNames.Contains(manifest.Input.Name))
            throw new ManifestException(manifest.ManifestPath ?? manifest.Name,
                $"'input.name' is '{manifest.Input.Name}' but the graph's inputs are: {string.Join(", ", graph.InputNames)}.");
        foreach (var output in outputs.Where(o => !manifest.Outputs.Contains(o) && !graph.HasTensor(o.TensorName)))
            throw new ArgumentException(UnknownOutputMessage(manifest, output.TensorName, graph, catalog));
        var precision = options.Precision ?? manifest.Precision;
        // int8 is calibrated on the float32 input: the uint8 front goes on after quantising, so both forms share one cached, calibrated graph
        var uint8Late = options.Uint8Input && precision == ModelPrecision.Int8 && manifest.Precision == ModelPrecision.Fp32;
        if (options.Uint8Input && !uint8Late)
            graph.Prepend(Uint8InputGraph.Build(manifest, graph.DefaultOpset, graph.Proto.IrVersion), manifest.Input.Name);
        try
        {
            graph.ExposeOutputs(outputs.Select(o => new OutputRequest(o.TensorName, o.Name, o.Flatten)), replaceOutputs: true);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"model '{manifest.Name}': {e.Message} Manifest outputs: {string.Join(", ", manifest.Outputs.Select(o => o.Name))}.", e);
        }
        var pruned = graph.Prune();
        byte[] bytes;
        var conversion = PrecisionConversion.ReadFrom(graph);
        string? cachedAt = null;
        if (precision != manifest.Precision)
        {
            if (manifest.Precision != ModelPrecision.Fp32)
                throw new ArgumentException($"model '{manifest.Name}' is stored at precision {Name(manifest.Precision)} ({manifest.ManifestPath ?? manifest.Name}); " +
                                            $"it can only run at that precision. Use the float32 model it was converted from for {Name(precision)}.");
            if (precision == ModelPrecision.Int8)
                (bytes, conversion, cachedAt) = QuantizeInt8(manifest, graph, options);
            else
            {
                var f16 = options.Float16 ?? new Float16Options();
                PrecisionConversion? made = null;
                byte[] Convert()
                {
                    made = Float16Conversion.Apply(graph, f16);
                    return graph.ToBytes();
                }
                bytes = options.Cache is { } cache
                    ? cache.GetOrConvert(manifest, graph.ToBytes(), $"fp16|{f16.Form}|{f16.FoldBatchNormalization}|{string.Join(",", f16.Float32Ops.Order(StringComparer.Ordinal))}|{Float16Conversion.RulesVersion}", Convert, out cachedAt)
                    : Convert();
                conversion = made ?? PrecisionConversion.ReadFrom(OnnxGraph.FromBytes(bytes, cachedAt ?? graph.Origin))
                             ?? throw new InvalidDataException($"{cachedAt ?? graph.Origin}: converted graph lacks its '{PrecisionConversion.MetadataKey}' record; delete the file.");
            }
        }
        else
        {
            bytes = graph.ToBytes();
            if (cacheKey is not null && conversion is null)
                options.Cache!.PutPrepared(manifest, cacheKey, bytes, new PreparedFacts(pruned, graph.WeightStorage, warnings));
        }
        return new PreparedModel
        {
            Manifest = manifest,
            OnnxBytes = bytes,
            Outputs = outputs,
            PrunedNodeCount = pruned,
            WeightStorage = graph.WeightStorage,
            Uint8Input = options.Uint8Input,
            Precision = precision,
            Conversion = conversion,
            CachedAt = cachedAt,
            Warnings = warnings,
        };
    }

    /// <summary>
    /// int8: the calibrated QDQ graph from the cache (keyed by the float32 graph, the calibration set's key, the options
    /// and the rules version) or made by <see cref="Int8Quantization"/>; then the uint8 front when asked for.
    /// </summary>
    private static (byte[] Bytes, PrecisionConversion Conversion, string? CachedAt) QuantizeInt8(ModelManifest manifest, OnnxGraph graph, PrepareOptions options)
    {
        var int8 = options.Int8 ?? new Int8Options();
        var calibrator = int8.Calibrator ?? throw new ArgumentException(
            $"model '{manifest.Name}': precision int8 needs calibration images (a folder of the user's own images, a few hundred); none were given.");
        PrecisionConversion? made = null;
        byte[] Convert()
        {
            made = Int8Quantization.Apply(graph, int8);
            return graph.ToBytes();
        }
        string? cachedAt = null;
        var bytes = options.Cache is { } cache
            ? cache.GetOrConvert(manifest, graph.ToBytes(), $"int8|{int8.Key}|{calibrator.Key}|{Int8Quantization.RulesVersion}", Convert, out cachedAt)
            : Convert();
        var quantized = OnnxGraph.FromBytes(bytes, cachedAt ?? graph.Origin);
        var conversion = made ?? PrecisionConversion.ReadFrom(quantized)
                         ?? throw new InvalidDataException($"{cachedAt ?? graph.Origin}: converted graph lacks its '{PrecisionConversion.MetadataKey}' record; delete the file.");
        if (options.Uint8Input)
        {
            quantized.Prepend(Uint8InputGraph.Build(manifest, quantized.DefaultOpset, quantized.Proto.IrVersion), manifest.Input.Name);
            bytes = quantized.ToBytes();
        }
        return (bytes, conversion, cachedAt);
    }

    /// <summary>The precision as typed on the command line and written in manifests (fp32, fp16, int8).</summary>
    /// <summary>
    /// What makes a prepared graph: the model files (path, size, modification time), the manifest's own file, the
    /// outputs requested, the input form and this library's build (its module version id changes with every code
    /// change), so a stale entry is never read back.
    /// </summary>
    private static string PreparedKey(ModelManifest manifest, IReadOnlyList<ModelOutput> outputs, PrepareOptions options, ModelCatalog catalog)
    {
        static string Stamp(string path) { var f = new FileInfo(path); return $"{f.FullName}|{f.Length}|{f.LastWriteTimeUtc.Ticks}"; }
        var files = new List<string> { Stamp(catalog.LocateFile(manifest.Source, manifest)) };
        if (manifest.Source.Prepend is { } pre) files.Add(Stamp(catalog.LocateFile(pre, manifest)));
        if (manifest.ManifestPath is { } manifestPath && File.Exists(manifestPath)) files.Add(Stamp(manifestPath));
        return string.Join("\n", [
            "prepared/1", typeof(PreparedModel).Assembly.ManifestModule.ModuleVersionId.ToString(), manifest.Name, .. files,
            $"uint8={options.Uint8Input}", .. outputs.Select(o => $"{o.Name}={o.TensorName}|{o.Flatten}")]);
    }

    public static string Name(ModelPrecision precision) => precision.ToString().ToLowerInvariant();

    /// <summary>fp32, fp16 or int8 (any case) as a precision.</summary>
    /// <exception cref="FormatException">Another name.</exception>
    public static ModelPrecision ParsePrecision(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" => ModelPrecision.Fp32,
        "fp16" => ModelPrecision.Fp16,
        "int8" => ModelPrecision.Int8,
        _ => throw new FormatException($"'{text}': use fp32, fp16 or int8."),
    };
}

/// <summary>What <see cref="PreparedModel.Build"/> learnt while preparing a graph, kept beside it in the cache.</summary>
/// <param name="PrunedNodeCount">Nodes pruned.</param>
/// <param name="WeightStorage">Weight storage note, when the weights are not stored as trained.</param>
/// <param name="Warnings">Warnings raised while preparing.</param>
/// <param name="Length">Bytes of the cached graph (a check that the pair belongs together).</param>
internal sealed record PreparedFacts(int PrunedNodeCount, string? WeightStorage, IReadOnlyList<string> Warnings, long Length = 0);
