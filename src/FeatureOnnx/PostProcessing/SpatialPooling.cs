namespace FeatureOnnx.PostProcessing;

/// <summary>How a spatial map [C,H,W] becomes a vector.</summary>
public enum PoolingMode
{
    /// <summary>Leave rows as they are.</summary>
    None,

    /// <summary>Global average pooling: mean over H*W (float64 sum), [C,H,W] -> [C].</summary>
    Average,

    /// <summary>Global max pooling: max over H*W, [C,H,W] -> [C]; NaN wins, as numpy's max.</summary>
    Max,

    /// <summary>Flatten in C order: [C,H,W] -> [C*H*W] (torch.flatten(x, 1)).</summary>
    Flatten,
}

/// <summary>
/// Pools or flattens rows of spatial maps. A row of shape [C, d1, d2, ...] is C channels over d1*d2*... positions;
/// a row that is already a vector [C] passes through unchanged.
/// </summary>
public static class SpatialPooling
{
    /// <summary>Parses "avg"/"average", "max", "flatten" or "none".</summary>
    public static PoolingMode Parse(string text) => text.ToLowerInvariant() switch
    {
        "avg" or "average" or "mean" => PoolingMode.Average,
        "max" => PoolingMode.Max,
        "flatten" => PoolingMode.Flatten,
        "none" => PoolingMode.None,
        _ => throw new ArgumentException($"pooling '{text}': use avg, max, flatten or none."),
    };

    /// <summary>Shape of an output row for input rows of <paramref name="rowShape"/>.</summary>
    public static long[] OutputRowShape(IReadOnlyList<long> rowShape, PoolingMode mode)
    {
        if (rowShape.Count == 0) return [1];
        var total = rowShape.Aggregate(1L, (a, b) => a * b);
        return mode switch
        {
            PoolingMode.None => [.. rowShape],
            PoolingMode.Flatten => [total],
            _ => [rowShape[0]],
        };
    }

    /// <summary>
    /// Pools <paramref name="input"/> (whole rows of <paramref name="rowShape"/>) into <paramref name="output"/>
    /// (rows of <see cref="OutputRowShape"/>).
    /// </summary>
    public static void Apply(ReadOnlySpan<float> input, IReadOnlyList<long> rowShape, PoolingMode mode, Span<float> output)
    {
        var rowLength = (int)rowShape.Aggregate(1L, (a, b) => a * b);
        if (rowLength == 0 || input.Length % rowLength != 0) throw new ArgumentException($"{input.Length} floats is not a whole number of rows of [{string.Join(",", rowShape)}]");
        var rows = input.Length / rowLength;
        var channels = rowShape.Count == 0 ? 1 : (int)rowShape[0];
        var positions = rowLength / channels;
        if (mode is PoolingMode.None or PoolingMode.Flatten || positions == 1)
        {
            input.CopyTo(output);
            return;
        }
        if (output.Length < rows * channels) throw new ArgumentException($"output holds {output.Length} floats, {rows} rows of {channels} need {rows * channels}");
        for (var r = 0; r < rows; r++)
        for (var c = 0; c < channels; c++)
        {
            var plane = input.Slice(r * rowLength + c * positions, positions);
            float value;
            if (mode == PoolingMode.Average)
            {
                var sum = 0.0;
                foreach (var x in plane) sum += x;
                value = (float)(sum / positions);
            }
            else
            {
                value = plane[0];
                foreach (var x in plane)
                {
                    if (float.IsNaN(x)) { value = x; break; }
                    if (x > value) value = x;
                }
            }
            output[r * channels + c] = value;
        }
    }
}
