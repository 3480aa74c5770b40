using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FeatureOnnx.Models;

/// <summary>
/// Appends nodes and constant initializers to a graph under construction, naming every tensor and node
/// <c>prefix + hint + counter</c> so that what it builds never collides with the graph it goes into.
/// </summary>
internal sealed class GraphBuilder(string prefix)
{
    private int _counter;

    /// <summary>Nodes in the order built.</summary>
    public List<NodeProto> Nodes { get; } = [];

    /// <summary>Constants the nodes read.</summary>
    public List<TensorProto> Initializers { get; } = [];

    /// <summary>A fresh tensor name.</summary>
    public string Name(string hint) => $"{prefix}{hint}_{_counter++}";

    /// <summary>Adds a node with one output (a fresh name unless <paramref name="output"/> is given); returns that output.</summary>
    public string Op(string opType, IEnumerable<string> inputs, string domain = "", IEnumerable<AttributeProto>? attributes = null, string? output = null)
    {
        var name = output ?? Name(opType.ToLowerInvariant());
        Nodes.Add(Node(opType, inputs, [name], domain, attributes ?? []));
        return name;
    }

    /// <summary>A node with a fresh node name, not yet added (for Loop and If, whose outputs are several or given).</summary>
    public NodeProto Node(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, string domain = "", params IEnumerable<AttributeProto> attributes) =>
        OnnxProto.Node(opType, $"{prefix}{opType}_node{_counter++}", inputs, outputs, domain, attributes);

    /// <summary>Adds an int64 constant (1-D unless <paramref name="dims"/> says otherwise); returns its name.</summary>
    public string Int64s(string hint, long[] values, long[]? dims = null) => Add(OnnxProto.Int64s(prefix + hint, values, dims));

    /// <summary>Adds a float32 constant (1-D unless <paramref name="dims"/> says otherwise); returns its name.</summary>
    public string Floats(string hint, IEnumerable<float> values, long[]? dims = null) => Add(OnnxProto.Floats(prefix + hint, values, dims));

    /// <summary>Adds a uint8 scalar constant; returns its name.</summary>
    public string Uint8Scalar(string hint, byte value) => Add(OnnxProto.Uint8Scalar(prefix + hint, value));

    /// <summary>
    /// ToTensor and Normalize of the manifest on <paramref name="uint8Nhwc"/> (uint8 [N, H, W, 3], RGB): Cast to
    /// float32 -> Div(pixel divisor) -> Sub(mean) -> Div(std) -> channel order (Gather on the channel axis) ->
    /// Transpose to NCHW when the model wants it. The same float32 operations in the same order as
    /// <c>Preprocessing.TensorWriter</c>, so the values are identical; identity steps are left out. Needs opset 7
    /// (broadcasting Sub and Div). Returns the normalised tensor's name.
    /// </summary>
    public string Normalize(string uint8Nhwc, PreprocessSpec spec, TensorLayout layout)
    {
        var x = Op("Cast", [uint8Nhwc], attributes: [OnnxProto.Int("to", (long)DataType.Float)]);
        if (spec.PixelDivisor != 1f) x = Op("Div", [x, Floats("pixel_divisor", [spec.PixelDivisor], [])]);
        if (spec.Mean.Any(m => m != 0f)) x = Op("Sub", [x, Floats("mean", spec.Mean, [3])]);
        if (spec.Std.Any(s => s != 1f)) x = Op("Div", [x, Floats("std", spec.Std, [3])]);
        if (spec.ChannelOrder == ChannelOrder.Bgr)
            x = Op("Gather", [x, Int64s("bgr_indices", [2, 1, 0])], attributes: [OnnxProto.Int("axis", 3)]);
        if (layout == TensorLayout.Nchw)
            x = Op("Transpose", [x], attributes: [OnnxProto.Ints("perm", [0, 3, 1, 2])]);
        return x;
    }

    private string Add(TensorProto tensor)
    {
        Initializers.Add(tensor);
        return tensor.Name;
    }
}
