using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Models;

/// <summary>
/// ONNX graph surgery on top of OnnxSharp's protobuf classes: list tensors, expose any of them as named outputs
/// (the replacement for PyTorch forward hooks), make the batch axis dynamic, compose a preprocessing graph in front,
/// and prune the graph to what the requested outputs need so that asking for early layers runs less.
/// One file per job: this one loads and saves; OnnxGraph.Listing, .Outputs, .DynamicBatch, .Pruning, .Prepend and
/// .Float16Weights do the rest.
/// </summary>
public sealed partial class OnnxGraph
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

    private HashSet<string> AllTensorNames()
    {
        var names = Graph.Input.Select(i => i.Name).ToHashSet();
        foreach (var n in Graph.Node)
            foreach (var o in n.Output)
                names.Add(o);
        return names;
    }

    /// <summary>Whether a graph input or a node output is named <paramref name="name"/>.</summary>
    public bool HasTensor(string name) => AllTensorNames().Contains(name);

    /// <summary>Inputs and node outputs in the graph.</summary>
    public int TensorCount => AllTensorNames().Count;
}
