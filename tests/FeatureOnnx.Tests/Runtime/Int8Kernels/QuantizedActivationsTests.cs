using FeatureOnnx.Runtime.Int8Kernels;

namespace FeatureOnnx.Tests.Runtime.Int8Kernels;

/// <summary>
/// The uint8 SiLU table and the channel scaling against references written here in double precision (ONNX's
/// DequantizeLinear / QuantizeLinear: round half to even, saturate), and the vector paths against plain loops, at every
/// tier this CPU has (scalar, AVX2, AVX-512 VBMI; the ones it lacks are skipped with the reason).
/// </summary>
[Trait("Category", TestCategory.Fast)]
public sealed class QuantizedActivationsTests(ITestOutputHelper output)
{
    private static byte QuantizeDouble(double value, double scale, int zero) =>
        (byte)Math.Clamp(Math.Round(value / scale, MidpointRounding.ToEven) + zero, 0, 255);

    [Theory]
    [InlineData(0.05f, 128, 0.02f, 14)]   // a symmetric input range, output from about -0.28
    [InlineData(0.1f, 200, 0.03f, 10)]    // mostly negative inputs
    [InlineData(0.02f, 0, 0.02f, 0)]      // inputs from 0 (after a Relu-like producer)
    public void Silu_table_is_the_quantised_silu_of_each_dequantised_level(float xScale, int xZero, float yScale, int yZero)
    {
        var table = new byte[256];
        QuantizedActivations.SiluTable(xScale, (byte)xZero, yScale, (byte)yZero, table);
        var off = 0;
        for (var q = 0; q < 256; q++)
        {
            double x = (q - xZero) * (double)xScale;
            var silu = x / (1 + Math.Exp(-x));
            var expected = QuantizeDouble(silu, yScale, yZero);
            // float32 arithmetic may fall on the other side of a rounding tie than double: one level, only at a tie.
            if (table[q] != expected)
            {
                var distance = Math.Abs(silu / yScale - Math.Floor(silu / yScale) - 0.5);
                Assert.True(Math.Abs(table[q] - expected) == 1 && distance < 1e-4, $"level {q}: {table[q]} against {expected} (silu {silu})");
                off++;
            }
        }
        output.WriteLine($"{off} of 256 levels one step off the double reference (at ties)");
        Assert.Equal(QuantizeDouble(0, yScale, yZero), table[xZero]); // SiLU(0) = 0 maps to the output zero point
    }

    // Tiers as numbers (KernelTier is internal): 0 scalar, 1 AVX2, 2 AVX-512 VBMI.
    public static TheoryData<int> Tiers => new() { (int)KernelTier.None, (int)KernelTier.Avx2, (int)KernelTier.Avx512Vbmi };

    private static void SkipAbove(KernelTier tier) =>
        Skip.If(tier > QuantizedActivations.Tier, $"this CPU (or FEATUREONNX_INT8_KERNEL_TIER) runs {QuantizedActivations.Describe(QuantizedActivations.Tier)}, not {QuantizedActivations.Describe(tier)}");

    [SkippableTheory]
    [MemberData(nameof(Tiers))]
    public void Lookup_equals_indexing_the_table_at_every_length_and_offset(int tierNumber)
    {
        var tier = (KernelTier)tierNumber;
        SkipAbove(tier);
        var random = new Random(5);
        var table = new byte[256];
        random.NextBytes(table);
        var data = new byte[1000];
        random.NextBytes(data);
        for (var i = 0; i < 256; i++) data[i] = (byte)i; // every index, both halves of the table
        foreach (var (start, length) in new[] { (0, 1000), (0, 0), (3, 63), (1, 64), (7, 65), (0, 256), (5, 130), (100, 900) })
        {
            var source = data.AsSpan(start, length);
            var result = new byte[length];
            QuantizedActivations.Lookup(source, result, table, tier);
            for (var i = 0; i < length; i++) Assert.Equal(table[source[i]], result[i]);
        }
    }

    public static TheoryData<int, int, int> ScaleCases()
    {
        var cases = new TheoryData<int, int, int>();
        // 32: two 16-lane vectors a pixel (four 8-lane); 40: two and an 8-channel tail (five 8-lane); 7: tail only.
        foreach (var tier in new[] { KernelTier.None, KernelTier.Avx2, KernelTier.Avx512Vbmi })
            foreach (var (pixels, channels) in new[] { (3, 32), (5, 40), (4, 7) })
                cases.Add(pixels, channels, (int)tier);
        return cases;
    }

    [SkippableTheory]
    [MemberData(nameof(ScaleCases))]
    public void Channel_scale_is_the_quantised_product_of_the_dequantised_input_and_gate(int pixels, int channels, int tierNumber)
    {
        var tier = (KernelTier)tierNumber;
        SkipAbove(tier);
        var random = new Random(channels);
        var x = new byte[pixels * channels];
        random.NextBytes(x);
        var gate = new byte[channels];
        random.NextBytes(gate);
        const float xScale = 0.04f, gScale = 1 / 255f, yScale = 0.03f;
        const byte xZero = 120, gZero = 0, yZero = 9;
        var factors = new float[channels];
        QuantizedActivations.GateFactors(gate, xScale, gScale, gZero, yScale, factors);
        var y = new byte[x.Length];
        QuantizedActivations.ScaleChannels(x, y, pixels, channels, factors, xZero, yZero, tier);
        var saturated = 0;
        for (var p = 0; p < pixels; p++)
            for (var c = 0; c < channels; c++)
            {
                var i = p * channels + c;
                var product = (x[i] - xZero) * (double)xScale * ((gate[c] - gZero) * (double)gScale);
                var expected = QuantizeDouble(product, yScale, yZero);
                if (expected is 0 or 255) saturated++;
                var distance = Math.Abs(product / yScale - Math.Floor(product / yScale) - 0.5);
                Assert.True(y[i] == expected || (Math.Abs(y[i] - expected) == 1 && distance < 1e-4), $"pixel {p} channel {c}: {y[i]} against {expected}");
            }
        Assert.True(saturated > 0, "the case should reach the saturation at 0 (products below -0.27)");
    }
}
