using Onnx;

namespace FeatureOnnx.Models;

/// <summary>
/// The manifest's ToTensor and Normalize as a graph to put in front of a model, so that 8-bit crops travel to the
/// execution provider (a quarter of the float32 bytes) and are normalised there. Input: uint8 [N, H, W, 3], RGB, as
/// <c>Preprocessing.ImagePreprocessor</c> crops them. The nodes are <see cref="GraphBuilder.Normalize"/>, the
/// same the end-to-end models use: the float32 operations of <c>Preprocessing.TensorWriter</c>, in its order.
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
        var name = InputName(input);
        var builder = new GraphBuilder("uint8_input/");
        var output = builder.Normalize(name, manifest.Preprocess, input.Layout);
        var g = new GraphProto { Name = "featureonnx_uint8_input" };
        g.Input.Add(OnnxProto.Value(name, TensorProto.Types.DataType.Uint8, ["N", input.Height, input.Width, 3]));
        g.Node.AddRange(builder.Nodes);
        g.Initializer.AddRange(builder.Initializers);
        g.Output.Add(OnnxProto.Value(output, TensorProto.Types.DataType.Float,
            input.Layout == TensorLayout.Nchw ? ["N", 3, input.Height, input.Width] : ["N", input.Height, input.Width, 3]));
        return OnnxGraph.FromProto(OnnxProto.Model(g, opset, irVersion, "FeatureOnnx"), "uint8 input of " + (manifest.ManifestPath ?? manifest.Name));
    }
}
