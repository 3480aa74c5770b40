namespace FeatureOnnx.Benchmarking;

/// <summary>Latency of the timed runs of one configuration, in milliseconds.</summary>
/// <param name="Mean">Arithmetic mean.</param>
/// <param name="Min">Fastest run.</param>
/// <param name="P50">Median.</param>
/// <param name="P90">90th percentile.</param>
/// <param name="P99">99th percentile.</param>
/// <param name="Max">Slowest run.</param>
public sealed record LatencySummary(double Mean, double Min, double P50, double P90, double P99, double Max)
{
    /// <summary>Summarises <paramref name="values"/> (at least one).</summary>
    public static LatencySummary From(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values to summarise", nameof(values));
        var sorted = values.Order().ToArray();
        return new LatencySummary(sorted.Average(), sorted[0], Sorted(sorted, 50), Sorted(sorted, 90), Sorted(sorted, 99), sorted[^1]);
    }

    /// <summary>
    /// The <paramref name="percent"/>-th percentile with numpy's default (linear) interpolation: position
    /// <c>p/100 * (n-1)</c> in the sorted values, interpolated between its two neighbours.
    /// <c>Percentile([1, 2, 3, 4, 10], 90)</c> is 7.6, as <c>np.percentile</c> gives.
    /// </summary>
    public static double Percentile(IEnumerable<double> values, double percent) => Sorted(values.Order().ToArray(), percent);

    private static double Sorted(double[] sorted, double percent)
    {
        if (sorted.Length == 0) throw new ArgumentException("no values", nameof(sorted));
        if (percent is < 0 or > 100 || double.IsNaN(percent)) throw new ArgumentOutOfRangeException(nameof(percent), "a percentile is between 0 and 100");
        var rank = percent / 100 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }
}
