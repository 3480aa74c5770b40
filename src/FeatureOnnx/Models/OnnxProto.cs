using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace FeatureOnnx.Models;

/// <summary>One dimension of a value info's shape: a fixed size or a symbolic name (e.g. <c>"N"</c>).</summary>
internal readonly record struct OnnxDim(long? Value, string? Param)
{
    public static implicit operator OnnxDim(long value) => new(value, null);

    public static implicit operator OnnxDim(string param) => new(null, param);
}

/// <summary>
/// The small ONNX protobuf pieces every graph we build is made of (value infos, tensors, attributes, nodes, models),
/// written once so that the probe model, the uint8 input graph, the end-to-end front and the graph edits agree.
/// </summary>
internal static class OnnxProto
{
    /// <summary>A tensor value info; <paramref name="dims"/> null leaves the shape unknown, empty makes a scalar.</summary>
    public static ValueInfoProto Value(string name, DataType type, IEnumerable<OnnxDim>? dims = null)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)type };
        if (dims is not null)
        {
            tensor.Shape = new TensorShapeProto();
            foreach (var d in dims)
                tensor.Shape.Dim.Add(d.Value is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = d.Param });
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    /// <summary>A float32 tensor held in float_data; <paramref name="dims"/> null means 1-D of the values' length, empty a scalar.</summary>
    public static TensorProto Floats(string name, IEnumerable<float> values, IEnumerable<long>? dims = null)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
        t.FloatData.AddRange(values);
        t.Dims.AddRange(dims ?? [t.FloatData.Count]);
        return t;
    }

    /// <summary>A float32 tensor held as little-endian raw bytes (the compact form for weights).</summary>
    public static TensorProto RawFloats(string name, ReadOnlySpan<float> values, IEnumerable<long> dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    /// <summary>An int64 tensor; <paramref name="dims"/> null means 1-D of the values' length, empty a scalar.</summary>
    public static TensorProto Int64s(string name, IEnumerable<long> values, IEnumerable<long>? dims = null)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        t.Int64Data.AddRange(values);
        t.Dims.AddRange(dims ?? [t.Int64Data.Count]);
        return t;
    }

    /// <summary>A tensor of <paramref name="type"/> held as raw little-endian bytes.</summary>
    public static TensorProto Raw(string name, DataType type, byte[] bytes, IEnumerable<long> dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        t.Dims.AddRange(dims);
        return t;
    }

    /// <summary>A uint8 scalar.</summary>
    public static TensorProto Uint8Scalar(string name, byte value) =>
        new() { Name = name, DataType = (int)DataType.Uint8, RawData = ByteString.CopyFrom(value) };

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Graph(string name, GraphProto graph) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = graph };

    /// <summary>A node; empty strings in <paramref name="inputs"/> are ONNX's omitted optional inputs.</summary>
    public static NodeProto Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, string domain = "", params IEnumerable<AttributeProto> attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name, Domain = domain };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    /// <summary>A Cast of <paramref name="input"/> to <paramref name="to"/>.</summary>
    public static NodeProto Cast(string name, string input, string output, DataType to) => Node("Cast", name, [input], [output], "", Int("to", (long)to));

    /// <summary>A model around <paramref name="graph"/> importing the default domain at <paramref name="opset"/>.</summary>
    public static ModelProto Model(GraphProto graph, long opset, long irVersion, string producer)
    {
        var model = new ModelProto { IrVersion = irVersion, ProducerName = producer, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }
}
