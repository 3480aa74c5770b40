using FeatureOnnx.Benchmarking;

namespace FeatureOnnx.Tests.Benchmarking;

[Trait("Category", TestCategory.Fast)]
public sealed class OutputAgreementTests
{
    [Fact]
    public void Agreement_is_per_row_max_abs_relative_and_cosine()
    {
        // Row 0: identical. Row 1: [3, 4] against [3, 0]: diff 4, max|ref| 3 -> relative 4/3, cosine 9/(5*3) = 0.6.
        float[] reference = [1, -2, 3, 0];
        float[] values = [1, -2, 3, 4];
        var a = OutputAgreement.Compare("x", [2, 2], values, reference, rows: 2);
        Assert.Equal(4, a.MaxAbs);
        Assert.Equal(4.0 / 3, a.MaxRelative, 12);
        Assert.Equal(0.6, a.MinCosine, 12);
    }

    [Fact]
    public void Identical_outputs_agree_exactly_and_nan_is_infinite_disagreement()
    {
        var values = Enumerable.Range(0, 3 * 64).Select(i => MathF.Sin(i) * 7).ToArray();
        var same = OutputAgreement.Compare("x", [3, 64], values, values.ToArray(), 3);
        Assert.Equal((0.0, 0.0, 1.0), (same.MaxAbs, same.MaxRelative, same.MinCosine));
        var broken = values.ToArray();
        broken[70] = float.NaN;
        var nan = OutputAgreement.Compare("x", [3, 64], broken, values, 3);
        Assert.Equal(double.PositiveInfinity, nan.MaxAbs);
        Assert.True(nan.MinCosine < 0);
        var zeros = new float[4];
        Assert.Equal(1.0, OutputAgreement.Compare("z", [1, 4], zeros, zeros, 1).MinCosine);
    }
}
