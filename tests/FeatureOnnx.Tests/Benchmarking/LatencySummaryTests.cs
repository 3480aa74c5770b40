using FeatureOnnx.Benchmarking;

namespace FeatureOnnx.Tests.Benchmarking;

[Trait("Category", TestCategory.Fast)]
public sealed class LatencySummaryTests
{
    // Expected values: numpy 1.24 np.percentile(values, p) (default method 'linear'), and by hand:
    // position p/100*(n-1) in the sorted values, e.g. [1,2,3,4,10] at 90: 3.6 -> 4 + 0.6*(10-4) = 7.6.
    [Theory]
    [InlineData(new[] { 1.0, 2, 3, 4, 10 }, 90, 7.6)]
    [InlineData(new[] { 1.0, 2, 3, 4, 10 }, 50, 3.0)]
    [InlineData(new[] { 1.0, 2, 3, 4, 10 }, 99, 9.76)]
    [InlineData(new[] { 1.0, 2, 3, 4, 10 }, 0, 1.0)]
    [InlineData(new[] { 1.0, 2, 3, 4, 10 }, 100, 10.0)]
    [InlineData(new[] { 10.0, 4, 1, 3, 2 }, 90, 7.6)]
    [InlineData(new[] { 15.0, 20, 35, 40, 50 }, 40, 29.0)]
    [InlineData(new[] { 7.0 }, 99, 7.0)]
    [InlineData(new[] { 2.5, 1.0 }, 25, 1.375)]
    public void Percentile_matches_numpys_linear_interpolation(double[] values, double percent, double expected)
    {
        Assert.Equal(expected, LatencySummary.Percentile(values, percent), 12);
    }

    [Fact]
    public void Summary_of_twenty_runs()
    {
        var values = Enumerable.Range(1, 20).Select(i => (double)i).Reverse().ToList();
        var s = LatencySummary.From(values);
        Assert.Equal(10.5, s.Mean, 12);
        Assert.Equal(10.5, s.P50, 12);
        Assert.Equal(18.1, s.P90, 12);
        Assert.Equal(19.81, s.P99, 12); // np.percentile(range(1, 21), 99)
        Assert.Equal(1, s.Min);
        Assert.Equal(20, s.Max);
    }

    [Fact]
    public void Percentile_refuses_nonsense()
    {
        Assert.Throws<ArgumentException>(() => LatencySummary.From([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencySummary.Percentile([1.0], 101));
    }
}
