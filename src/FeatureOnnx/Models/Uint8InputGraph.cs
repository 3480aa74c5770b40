using Onnx;

namespace FeatureOnnx.Models;

/// <summary>
/// The manifest's ToTensor and Normalize as a graph to put in front of a model, so that 8-bit crops travel to the
/// execution provider (a quarter of the float32 bytes) and are normalised there. Input: uint8 [N, H, W, 3], RGB, as
/// <see cref="Preprocessing.ImagePreprocessor"/> crops them. Nodes: Cast to float -> Div(pixelDivisor) -> Sub(mean)
/// -> Div(std) -> channel order -> Transpose to NCHW: the same float32 operations, in the same order, as
/// <see cref="Preprocessing.TensorWriter"/>, so the values are identical. Steps that are the identity (divisor 1,
/// mean 0, std 1, RGB, NHWC) are left out; they change no value.
/// </summary>
public static class Uint8InputGraph
{
    /// <summary>Suffix added to the manifest's input name to name the uint8 input (e.g. <c>input_uint8</c>).</summary>
    public const string InputSuffix = "_uint8";

    /// <summary>The uint8 input's name for <paramref name="input"/>.</summary>
    public static string InputName(ModelInput input) => input.Name + InputSuffix;

    /// <summary>Builds the normalisation graph for a manifest, in the given default-domain opset (that of the model it will feed).</summary>
    /// <exception cref="InvalidDataException">The opset is older than 7 (no broadcasting Sub and Div).</exception>
    public static OnnxGraph Build(ModelManifest manifest, long opset, long irVersion)
    {
        if (opset < 7)
            throw new InvalidDataException($"model '{manifest.Name}': opset {opset} is older than 7 (no broadcasting Sub/Div); uint8 input needs opset 7 or later. Feed float32 instead.");
        var input = manifest.Input;
        var spec = manifest.Preprocess;
        var g = new GraphProto { Name = "featureonnx_uint8_input" };
        var name = InputName(input);
        g.Input.Add(Value(name, TensorProto.Types.DataType.Uint8, [null, input.Height, input.Width, 3]));

        var current = name;
        string Add(string op, string output, IEnumerable<string> inputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = "uint8_input/" + output };
            node.Input.Add(current);
            node.Input.AddRange(inputs);
            node.Output.Add("uint8_input/" + output);
            node.Attribute.AddRange(attributes);
            g.Node.Add(node);
            return current = node.Output[0];
        }

        Add("Cast", "float", [], new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float });
        if (spec.PixelDivisor != 1f)
        {
            g.Initializer.Add(Floats("uint8_input/divisor", [spec.PixelDivisor], []));
            Add("Div", "scaled", ["uint8_input/divisor"]);
        }
        if (spec.Mean.Any(m => m != 0f))
        {
            g.Initializer.Add(Floats("uint8_input/mean", spec.Mean, [3]));
            Add("Sub", "centred", ["uint8_input/mean"]);
        }
        if (spec.Std.Any(s => s != 1f))
        {
            g.Initializer.Add(Floats("uint8_input/std", spec.Std, [3]));
            Add("Div", "normalised", ["uint8_input/std"]);
        }
        if (spec.ChannelOrder == ChannelOrder.Bgr)
        {
            var indices = new TensorProto { Name = "uint8_input/bgr_indices", DataType = (int)TensorProto.Types.DataType.Int64 };
            indices.Dims.Add(3);
            indices.Int64Data.AddRange([2L, 1L, 0L]);
            g.Initializer.Add(indices);
            Add("Gather", "bgr", ["uint8_input/bgr_indices"], new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 3 });
        }
        if (input.Layout == TensorLayout.Nchw)
        {
            var perm = new AttributeProto { Name = "perm", Type = AttributeProto.Types.AttributeType.Ints };
            perm.Ints.AddRange([0L, 3L, 1L, 2L]);
            Add("Transpose", "nchw", [], perm);
        }
        g.Output.Add(Value(current, TensorProto.Types.DataType.Float,
            input.Layout == TensorLayout.Nchw ? [null, 3, input.Height, input.Width] : [null, input.Height, input.Width, 3]));

        var model = new ModelProto { IrVersion = irVersion, ProducerName = "FeatureOnnx", Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return OnnxGraph.FromProto(model, "uint8 input of " + (manifest.ManifestPath ?? manifest.Name));
    }

    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type, int?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static TensorProto Floats(string name, IReadOnlyList<float> values, long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.FloatData.AddRange(values);
        return t;
    }
}
