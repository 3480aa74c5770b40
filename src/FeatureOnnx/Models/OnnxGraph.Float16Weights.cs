using Google.Protobuf;
using Onnx;

namespace FeatureOnnx.Models;

// Float16 weight storage: weights stored as half, cast back to float32 at load.
public sealed partial class OnnxGraph
{
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
