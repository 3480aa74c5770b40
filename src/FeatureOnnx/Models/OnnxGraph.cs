using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Models;

/// <summary>A tensor of a graph, as <c>featureonnx inspect</c> lists it.</summary>
/// <param name="Name">Tensor name in the graph.</param>
/// <param name="Kind">input, output or intermediate.</param>
/// <param name="Producer">The operator that makes it (empty for graph inputs).</param>
/// <param name="ElementType">ONNX element type name, or null when unknown.</param>
/// <param name="Shape">Dimensions; a symbolic dimension is its name, an unknown one is "?"; null when unknown.</param>
public sealed record TensorDescription(string Name, string Kind, string Producer, string? ElementType, IReadOnlyList<string>? Shape)
{
    /// <summary>Shape as text, e.g. [N,512,7,7].</summary>
    public string ShapeText => Shape is null ? "?" : "[" + string.Join(",", Shape) + "]";
}

/// <summary>A request to make a tensor a graph output.</summary>
/// <param name="Tensor">The existing tensor.</param>
/// <param name="Alias">The output name; may equal <paramref name="Tensor"/>.</param>
/// <param name="Flatten">Flatten to [N, rest] on the way out.</param>
public sealed record OutputRequest(string Tensor, string Alias, bool Flatten = false)
{
    /// <summary>Parses <c>t1,t2=alias</c> as used by <c>--outputs</c> and <c>--layers</c>.</summary>
    public static IReadOnlyList<OutputRequest> ParseList(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(item =>
            {
                var eq = item.IndexOf('=');
                return eq < 0 ? new OutputRequest(item, item) : new OutputRequest(item[..eq].Trim(), item[(eq + 1)..].Trim());
            })
            .ToList();
}

/// <summary>
/// ONNX graph surgery on top of OnnxSharp's protobuf classes: list tensors, expose any of them as named outputs
/// (the replacement for PyTorch forward hooks), make the batch axis dynamic, compose a preprocessing graph in front,
/// and prune the graph to what the requested outputs need so that asking for early layers runs less.
/// </summary>
public sealed class OnnxGraph
{
    private readonly ModelProto _model;

    private OnnxGraph(ModelProto model, string origin)
    {
        _model = model;
        Origin = origin;
    }

    /// <summary>Where the graph was read from, for messages.</summary>
    public string Origin { get; }

    /// <summary>The underlying protobuf, for callers that need more than this class offers.</summary>
    public ModelProto Proto => _model;

    private GraphProto Graph => _model.Graph;

    /// <summary>Graph input names, without initializers listed as inputs (old opsets do that).</summary>
    public IReadOnlyList<string> InputNames
    {
        get
        {
            var inits = Graph.Initializer.Select(i => i.Name).ToHashSet();
            return Graph.Input.Select(i => i.Name).Where(n => !inits.Contains(n)).ToList();
        }
    }

    /// <summary>Graph output names.</summary>
    public IReadOnlyList<string> OutputNames => Graph.Output.Select(o => o.Name).ToList();

    /// <summary>Version of the default ("ai.onnx") operator set.</summary>
    public long DefaultOpset => _model.OpsetImport.Where(o => string.IsNullOrEmpty(o.Domain) || o.Domain == "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();

    /// <summary>Reads an ONNX file.</summary>
    /// <exception cref="InvalidDataException">The file is not an ONNX model.</exception>
    public static OnnxGraph Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"ONNX file not found: {path}", path);
        try
        {
            using var stream = File.OpenRead(path);
            var model = ModelProto.Parser.ParseFrom(stream);
            if (model.Graph is null || model.Graph.Node.Count == 0)
                throw new InvalidDataException($"{path}: parsed, but holds no graph nodes; is it an ONNX model?");
            return new OnnxGraph(model, path);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{path}: not an ONNX model ({e.Message}).", e);
        }
    }

    /// <summary>Wraps a model built in code.</summary>
    internal static OnnxGraph FromProto(ModelProto model, string origin) => new(model, origin);

    /// <summary>Wraps bytes already in memory.</summary>
    public static OnnxGraph FromBytes(byte[] bytes, string origin) => new(ModelProto.Parser.ParseFrom(bytes), origin);

    /// <summary>Serialises the model.</summary>
    public byte[] ToBytes() => _model.ToByteArray();

    /// <summary>Writes the model to a file (atomically: a temporary file renamed into place).</summary>
    public void Save(string path)
    {
        var tmp = path + ".tmp";
        using (var stream = File.Create(tmp))
            _model.WriteTo(stream);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Lists inputs, every node output (intermediate tensors) and the graph outputs, with shapes where the file records them.</summary>
    public IReadOnlyList<TensorDescription> ListTensors()
    {
        var types = new Dictionary<string, ValueInfoProto>();
        foreach (var v in Graph.Input.Concat(Graph.ValueInfo).Concat(Graph.Output))
            types[v.Name] = v;
        var outputs = Graph.Output.Select(o => o.Name).ToHashSet();
        var result = new List<TensorDescription>();
        foreach (var name in InputNames)
            result.Add(Describe(name, "input", "", types));
        foreach (var node in Graph.Node)
            foreach (var o in node.Output.Where(o => o.Length > 0))
                result.Add(Describe(o, outputs.Contains(o) ? "output" : "intermediate", node.OpType, types));
        return result;
    }

    private static TensorDescription Describe(string name, string kind, string producer, Dictionary<string, ValueInfoProto> types)
    {
        if (!types.TryGetValue(name, out var v) || v.Type?.TensorType is null)
            return new TensorDescription(name, kind, producer, null, null);
        var tt = v.Type.TensorType;
        var elem = ((TensorProto.Types.DataType)tt.ElemType).ToString().ToLowerInvariant();
        IReadOnlyList<string>? shape = tt.Shape is null ? null : tt.Shape.Dim.Select(d =>
            d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue.ToString()
            : d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? d.DimParam : "?").ToList();
        return new TensorDescription(name, kind, producer, elem, shape);
    }

    private HashSet<string> AllTensorNames()
    {
        var names = Graph.Input.Select(i => i.Name).ToHashSet();
        foreach (var n in Graph.Node)
            foreach (var o in n.Output)
                names.Add(o);
        return names;
    }

    /// <summary>
    /// Makes axis 0 of every input, output and recorded intermediate a symbolic dimension named
    /// <paramref name="dimName"/>. Returns warnings for Reshape nodes whose constant target shape pins the batch.
    /// </summary>
    public IReadOnlyList<string> MakeBatchDynamic(string dimName = "N")
    {
        var inits = Graph.Initializer.Select(i => i.Name).ToHashSet();
        foreach (var v in Graph.Input.Where(i => !inits.Contains(i.Name)).Concat(Graph.ValueInfo).Concat(Graph.Output))
        {
            var dims = v.Type?.TensorType?.Shape?.Dim;
            if (dims is null || dims.Count == 0) continue;
            dims[0].ClearValue();
            dims[0].DimParam = dimName;
        }
        var warnings = new List<string>();
        var constants = Graph.Initializer.ToDictionary(i => i.Name);
        foreach (var node in Graph.Node.Where(n => n.OpType == "Reshape" && n.Input.Count > 1))
        {
            if (constants.TryGetValue(node.Input[1], out var shape) && shape.Int64Data.Count > 0 && shape.Int64Data[0] > 0)
                warnings.Add($"Reshape '{node.Name}' has a constant target shape starting with {shape.Int64Data[0]}: batches other than {shape.Int64Data[0]} will fail. Re-export with a dynamic batch axis.");
        }
        return warnings;
    }

    /// <summary>
    /// Adds graph outputs for existing tensors, each under its alias (through an Identity node when the alias differs,
    /// or a Flatten node when asked). Existing outputs stay unless <paramref name="replaceOutputs"/> is set.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor does not exist (the message lists close names), or an alias collides.</exception>
    public void ExposeOutputs(IEnumerable<OutputRequest> requests, bool replaceOutputs = false)
    {
        var requestList = requests.ToList();
        var names = AllTensorNames();
        var knownTypes = Graph.Input.Concat(Graph.ValueInfo).Concat(Graph.Output)
            .GroupBy(v => v.Name).ToDictionary(g => g.Key, g => g.First());
        var existing = replaceOutputs ? [] : Graph.Output.ToList();
        var newOutputs = new List<ValueInfoProto>(existing);
        foreach (var r in requestList)
        {
            if (!names.Contains(r.Tensor))
                throw new ArgumentException(UnknownTensorMessage(r.Tensor, names));
            if (newOutputs.Any(o => o.Name == r.Alias) && !(r.Flatten && r.Alias == r.Tensor))
            {
                if (r.Alias == r.Tensor && !r.Flatten) continue; // already an output under its own name
                throw new ArgumentException($"{Origin}: output name '{r.Alias}' is already taken; choose another alias (TENSOR=alias).");
            }
            if (r.Alias != r.Tensor && names.Contains(r.Alias))
                throw new ArgumentException($"{Origin}: alias '{r.Alias}' is already a tensor name in the graph; choose another alias.");
            if (r.Flatten)
            {
                var source = r.Tensor;
                if (r.Alias == r.Tensor)
                {
                    // The flattened output keeps the tensor's name: the unflattened tensor is renamed.
                    source = r.Tensor + "_unflattened";
                    RenameTensor(r.Tensor, source);
                    newOutputs.RemoveAll(o => o.Name == r.Tensor);
                }
                Graph.Node.Add(OnnxProto.Node("Flatten", $"featureonnx_flatten_{r.Alias}", [source], [r.Alias], "", OnnxProto.Int("axis", 1)));
            }
            else if (r.Alias != r.Tensor)
            {
                Graph.Node.Add(OnnxProto.Node("Identity", $"featureonnx_alias_{r.Alias}", [r.Tensor], [r.Alias]));
            }
            names.Add(r.Alias);
            var elemType = knownTypes.TryGetValue(r.Tensor, out var vi) && vi.Type?.TensorType is not null
                ? (TensorProto.Types.DataType)vi.Type.TensorType.ElemType
                : TensorProto.Types.DataType.Float;
            newOutputs.Add(OnnxProto.Value(r.Alias, elemType));
        }
        Graph.Output.Clear();
        Graph.Output.AddRange(newOutputs);
    }

    private void RenameTensor(string from, string to)
    {
        foreach (var node in Graph.Node)
        {
            for (var i = 0; i < node.Input.Count; i++) if (node.Input[i] == from) node.Input[i] = to;
            for (var i = 0; i < node.Output.Count; i++) if (node.Output[i] == from) node.Output[i] = to;
        }
        foreach (var v in Graph.ValueInfo.Where(v => v.Name == from)) v.Name = to;
        var output = Graph.Output.FirstOrDefault(o => o.Name == from);
        if (output is not null) Graph.Output.Remove(output);
    }

    /// <summary>Whether a graph input or a node output is named <paramref name="name"/>.</summary>
    public bool HasTensor(string name) => AllTensorNames().Contains(name);

    /// <summary>Inputs and node outputs in the graph.</summary>
    public int TensorCount => AllTensorNames().Count;

    /// <summary>The <paramref name="count"/> tensor names closest to <paramref name="name"/> (edit distance), closest first.</summary>
    public IReadOnlyList<string> ClosestTensorNames(string name, int count) => ClosestNames(name, AllTensorNames(), count);

    private static List<string> ClosestNames(string name, HashSet<string> names, int count) =>
        names.OrderBy(n => EditDistance.Between(n, name, ignoreCase: true)).ThenBy(n => n, StringComparer.Ordinal).Take(count).ToList();

    private string UnknownTensorMessage(string tensor, HashSet<string> names) =>
        $"{Origin}: no tensor named '{tensor}'. Closest names: {string.Join(", ", ClosestNames(tensor, names, 5))}. " +
        $"'featureonnx inspect {Path.GetFileName(Origin)}' lists all {names.Count} tensors.";

    /// <summary>
    /// Removes every node, initializer and recorded intermediate that no graph output depends on. ONNX Runtime runs
    /// the whole graph whatever outputs a caller fetches, so this is what makes "only layer2" cheaper than "pooled".
    /// Returns the number of nodes removed.
    /// </summary>
    public int Prune()
    {
        var needed = Graph.Output.Select(o => o.Name).ToHashSet();
        var keep = new bool[Graph.Node.Count];
        for (var i = Graph.Node.Count - 1; i >= 0; i--)
        {
            var node = Graph.Node[i];
            if (!node.Output.Any(needed.Contains)) continue;
            keep[i] = true;
            foreach (var input in node.Input.Where(s => s.Length > 0)) needed.Add(input);
            foreach (var attr in node.Attribute.Where(a => a.G is not null || a.Graphs.Count > 0))
                foreach (var sub in attr.Graphs.Append(attr.G).Where(g => g is not null))
                    foreach (var n in sub!.Node)
                        foreach (var input in n.Input.Where(s => s.Length > 0)) needed.Add(input); // outer-scope names used by subgraphs
        }
        var kept = Graph.Node.Where((_, i) => keep[i]).ToList();
        var removed = Graph.Node.Count - kept.Count;
        Graph.Node.Clear();
        Graph.Node.AddRange(kept);
        var initializerNames = Graph.Initializer.Select(t => t.Name).ToHashSet();
        Retain(Graph.Initializer, t => needed.Contains(t.Name));
        Retain(Graph.ValueInfo, v => needed.Contains(v.Name));
        // Real inputs stay (callers feed them); initializer-backed inputs (old opsets list them) go with their initializer.
        Retain(Graph.Input, v => !initializerNames.Contains(v.Name) || needed.Contains(v.Name));
        return removed;
    }

    private static void Retain<T>(Google.Protobuf.Collections.RepeatedField<T> field, Func<T, bool> keep)
    {
        var kept = field.Where(keep).ToList();
        field.Clear();
        field.AddRange(kept);
    }

    /// <summary>
    /// Puts <paramref name="pre"/> in front of this graph: pre's single output feeds this graph's input
    /// <paramref name="inputName"/>, and pre's input becomes the composed graph's input. Pre's internal names are
    /// prefixed to avoid collisions. Both graphs must use the same default opset, so no operator changes meaning.
    /// </summary>
    public void Prepend(OnnxGraph pre, string? inputName = null)
    {
        var preInputs = pre.InputNames;
        if (preInputs.Count != 1 || pre.Graph.Output.Count != 1)
            throw new InvalidDataException($"{pre.Origin}: a prepended graph needs exactly one input and one output (has {preInputs.Count} and {pre.Graph.Output.Count}).");
        if (pre.DefaultOpset != DefaultOpset)
            throw new InvalidDataException($"{pre.Origin}: opset {pre.DefaultOpset} differs from {Origin}'s opset {DefaultOpset}; convert one of them first.");
        var mainInputs = InputNames;
        inputName ??= mainInputs.Count == 1 ? mainInputs[0] : throw new InvalidDataException($"{Origin}: several inputs; say which one the prepended graph feeds.");
        if (!mainInputs.Contains(inputName))
            throw new InvalidDataException($"{Origin}: no input '{inputName}'. Inputs: {string.Join(", ", mainInputs)}.");

        var preIn = preInputs[0];
        var preOut = pre.Graph.Output[0].Name;
        var taken = AllTensorNames();
        foreach (var init in Graph.Initializer) taken.Add(init.Name);
        if (taken.Contains(preIn))
            throw new InvalidDataException($"{pre.Origin}: its input name '{preIn}' is already used in {Origin}.");
        string Rename(string n) => n == preIn || n.Length == 0 ? n : n == preOut ? inputName : "pre/" + n;

        var composedNodes = new List<NodeProto>();
        foreach (var (node, position) in pre.Graph.Node.Select((n, k) => (n, k)))
        {
            var copy = node.Clone();
            copy.Name = "pre/" + (node.Name.Length > 0 ? node.Name : $"{node.OpType}_{position}");
            for (var i = 0; i < copy.Input.Count; i++) copy.Input[i] = Rename(copy.Input[i]);
            for (var i = 0; i < copy.Output.Count; i++) copy.Output[i] = Rename(copy.Output[i]);
            composedNodes.Add(copy);
        }
        composedNodes.AddRange(Graph.Node);
        Graph.Node.Clear();
        Graph.Node.AddRange(composedNodes);
        foreach (var init in pre.Graph.Initializer)
        {
            var copy = init.Clone();
            copy.Name = Rename(init.Name);
            Graph.Initializer.Add(copy);
        }
        foreach (var vi in pre.Graph.ValueInfo.Where(v => v.Name != preOut))
        {
            var copy = vi.Clone();
            copy.Name = Rename(vi.Name);
            Graph.ValueInfo.Add(copy);
        }
        // The old input becomes an intermediate tensor produced by pre; the new input is pre's.
        var oldInput = Graph.Input.First(i => i.Name == inputName);
        Graph.Input.Remove(oldInput);
        Graph.ValueInfo.Add(oldInput);
        Graph.Input.Insert(0, pre.Graph.Input.First(i => i.Name == preIn).Clone());
    }
    /// <summary>Metadata key that <see cref="StoreWeightsAsFloat16"/> leaves in the model, saying what it did.</summary>
    public const string WeightStorageMetadataKey = "featureonnx.weight_storage";

    /// <summary>
    /// Stores every float32 initializer of at least <paramref name="minElements"/> values as float16 (IEEE binary16,
    /// round to nearest even), each followed by a Cast back to float32 at the start of the graph: the file holds half
    /// the bytes, ONNX Runtime folds the Casts when it builds the session, and the arithmetic stays float32; only the
    /// weights are rounded (relative error at most 2^-11 each). Small tensors (biases, batch-norm statistics) and
    /// tensors with values beyond float16's range stay float32. The model's metadata records the conversion.
    /// </summary>
    public WeightStorageReport StoreWeightsAsFloat16(int minElements = 1024)
    {
        var graphInputs = Graph.Input.ToDictionary(i => i.Name);
        var names = AllTensorNames();
        foreach (var init in Graph.Initializer) names.Add(init.Name);
        var casts = new List<NodeProto>();
        long converted = 0, kept = 0, bytesBefore = 0, bytesAfter = 0;
        double maxRelative = 0;
        foreach (var init in Graph.Initializer)
        {
            var size = init.Dims.Aggregate(1L, (a, d) => a * d);
            var isFloat = init.DataType == (int)TensorProto.Types.DataType.Float;
            if (!isFloat) continue;
            bytesBefore += size * 4;
            var values = FloatValues(init, size);
            if (size < minElements || values.Any(v => !float.IsFinite(v) || Math.Abs(v) > (float)Half.MaxValue))
            {
                kept++;
                bytesAfter += size * 4;
                continue;
            }
            var halves = new byte[size * 2];
            for (var i = 0; i < values.Length; i++)
            {
                var h = (Half)values[i];
                BitConverter.TryWriteBytes(halves.AsSpan(i * 2), h);
                if (Math.Abs(values[i]) >= Float16MinNormal) maxRelative = Math.Max(maxRelative, Math.Abs(((double)(float)h - values[i]) / values[i]));
            }
            var original = init.Name;
            var stored = UniqueName(original + "_float16", names);
            init.Name = stored;
            init.DataType = (int)TensorProto.Types.DataType.Float16;
            init.FloatData.Clear();
            init.RawData = ByteString.CopyFrom(halves);
            if (graphInputs.TryGetValue(original, out var listed)) // old IR versions list initializers as inputs
            {
                listed.Name = stored;
                if (listed.Type?.TensorType is { } tt) tt.ElemType = (int)TensorProto.Types.DataType.Float16;
            }
            casts.Add(OnnxProto.Cast(UniqueName("Cast_" + stored, names), stored, original, TensorProto.Types.DataType.Float));
            converted++;
            bytesAfter += size * 2;
        }
        for (var i = casts.Count - 1; i >= 0; i--) Graph.Node.Insert(0, casts[i]);
        var report = new WeightStorageReport((int)converted, (int)kept, bytesBefore, bytesAfter, maxRelative);
        if (converted > 0)
        {
            var note = $"float16: {converted} float32 weight tensors stored as float16 and cast back to float32 at load ({report.BytesBefore / 1e6:0.0} MB -> {report.BytesAfter / 1e6:0.0} MB); {kept} small tensors kept float32";
            var entry = _model.MetadataProps.FirstOrDefault(e => e.Key == WeightStorageMetadataKey);
            if (entry is null) _model.MetadataProps.Add(new StringStringEntryProto { Key = WeightStorageMetadataKey, Value = note });
            else entry.Value = note;
        }
        return report;
    }

    private const float Float16MinNormal = 6.103515625e-05f; // 2^-14; below it float16 keeps fewer significant bits

    /// <summary>What <see cref="StoreWeightsAsFloat16"/> recorded in the model, or null.</summary>
    public string? WeightStorage => _model.MetadataProps.FirstOrDefault(e => e.Key == WeightStorageMetadataKey)?.Value;

    internal static float[] FloatValues(TensorProto tensor, long size)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
            throw new NotSupportedException($"initializer '{tensor.Name}' keeps its data in an external file; load the model with its data and save it whole first.");
        if (!tensor.RawData.IsEmpty)
        {
            var raw = tensor.RawData.Span;
            if (raw.Length != size * 4) throw new InvalidDataException($"initializer '{tensor.Name}': {raw.Length} bytes of raw data for {size} float32 values.");
            var values = new float[size];
            for (var i = 0; i < values.Length; i++) values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(raw[(i * 4)..]);
            return values;
        }
        if (tensor.FloatData.Count != size) throw new InvalidDataException($"initializer '{tensor.Name}': {tensor.FloatData.Count} float values for shape [{string.Join(",", tensor.Dims)}].");
        return tensor.FloatData.ToArray();
    }

    private static string UniqueName(string wanted, HashSet<string> taken)
    {
        var name = wanted;
        for (var i = 1; !taken.Add(name); i++) name = $"{wanted}_{i}";
        return name;
    }
}

/// <summary>What <see cref="OnnxGraph.StoreWeightsAsFloat16"/> did.</summary>
/// <param name="Converted">Initializers now stored as float16.</param>
/// <param name="Kept">Float32 initializers left as they were (small, or beyond float16's range).</param>
/// <param name="BytesBefore">Bytes of float32 initializer data before.</param>
/// <param name="BytesAfter">Bytes of that data after.</param>
/// <param name="MaxRelativeRounding">Largest relative change of a weight in float16's normal range (|w| >= 2^-14);
/// smaller weights keep an absolute error below 2^-25.</param>
public sealed record WeightStorageReport(int Converted, int Kept, long BytesBefore, long BytesAfter, double MaxRelativeRounding);
