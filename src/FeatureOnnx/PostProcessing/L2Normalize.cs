namespace FeatureOnnx.PostProcessing;

/// <summary>
/// Scales each row to unit Euclidean length, as scikit-learn's <c>normalize(X, norm='l2')</c>: the norm is computed
/// in float64 and a row of zeros stays zeros.
/// </summary>
public static class L2Normalize
{
    /// <summary>Normalises the rows of <paramref name="data"/> (row-major, <paramref name="rowLength"/> floats each) in place.</summary>
    public static void Rows(Span<float> data, int rowLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 1);
        if (data.Length % rowLength != 0) throw new ArgumentException($"{data.Length} floats is not a whole number of rows of {rowLength}");
        for (var start = 0; start < data.Length; start += rowLength)
        {
            var row = data.Slice(start, rowLength);
            var squares = 0.0;
            foreach (var x in row) squares += (double)x * x;
            if (squares == 0) continue;
            var norm = Math.Sqrt(squares);
            for (var i = 0; i < row.Length; i++) row[i] = (float)(row[i] / norm);
        }
    }
}
