namespace FeatureOnnx.Benchmarking;

/// <summary>
/// How one output of a provider agrees with the CPU provider's on the same inputs. Rows are images (axis 0); each
/// row is compared as one flattened vector.
/// </summary>
/// <param name="Output">Output name.</param>
/// <param name="Shape">Output shape, batch first.</param>
/// <param name="MaxAbs">Largest |value - reference| over all elements.</param>
/// <param name="MaxRelative">Largest per-row <c>max|value - reference| / max|reference|</c> (0 when both rows are all zero).</param>
/// <param name="MinCosine">Smallest per-row cosine similarity (1 when both rows are all zero, 0 when only one is).</param>
public sealed record OutputAgreement(string Output, long[] Shape, double MaxAbs, double MaxRelative, double MinCosine)
{
    /// <summary>Compares <paramref name="values"/> with <paramref name="reference"/>, both <paramref name="rows"/> rows of equal length.</summary>
    public static OutputAgreement Compare(string output, long[] shape, ReadOnlySpan<float> values, ReadOnlySpan<float> reference, int rows)
    {
        if (values.Length != reference.Length) throw new ArgumentException($"output '{output}': {values.Length} values against {reference.Length} in the reference");
        if (rows <= 0 || values.Length % rows != 0) throw new ArgumentException($"output '{output}': {values.Length} values do not split into {rows} rows");
        var width = values.Length / rows;
        double maxAbs = 0, maxRelative = 0, minCosine = 1;
        for (var r = 0; r < rows; r++)
        {
            var a = values.Slice(r * width, width);
            var b = reference.Slice(r * width, width);
            double rowAbs = 0, refMax = 0, dot = 0, na = 0, nb = 0;
            for (var i = 0; i < width; i++)
            {
                double x = a[i], y = b[i];
                var diff = Math.Abs(x - y);
                // NaN must not hide behind Math.Max's ordering: a NaN anywhere is infinite disagreement.
                if (double.IsNaN(diff)) diff = double.PositiveInfinity;
                rowAbs = Math.Max(rowAbs, diff);
                refMax = Math.Max(refMax, Math.Abs(y));
                dot += x * y; na += x * x; nb += y * y;
            }
            maxAbs = Math.Max(maxAbs, rowAbs);
            var relative = rowAbs == 0 ? 0 : refMax > 0 ? rowAbs / refMax : double.PositiveInfinity;
            maxRelative = Math.Max(maxRelative, relative);
            var cosine = na == 0 && nb == 0 ? 1 : na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
            if (double.IsNaN(cosine)) cosine = -1;
            // Rounding can put an identical row's cosine a hair above 1.
            minCosine = Math.Min(minCosine, Math.Min(cosine, 1));
        }
        return new OutputAgreement(output, shape, maxAbs, maxRelative, minCosine);
    }
}
