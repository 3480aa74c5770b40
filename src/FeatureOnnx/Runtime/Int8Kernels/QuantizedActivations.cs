using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FeatureOnnx.Runtime.Int8Kernels;

/// <summary>
/// The two uint8 activations ONNX Runtime's CPU provider has no single kernel for, and which dominate an int8
/// EfficientNet: SiLU, <c>y = Q(x' * sigmoid(x'))</c> with <c>x' = DQ(x)</c>, which it runs as QLinearSigmoid then
/// QLinearMul (two passes over the map, and the sigmoid rounded to 8 bits in between), and the squeeze-excitation
/// gate, <c>y = Q(DQ(x) * DQ(g))</c> with g one value per image and channel, which its broadcasting QLinearMul runs
/// element by element. Here SiLU is one lookup in a 256-entry table (64 bytes at a time with AVX-512 VBMI) and the gate
/// one multiply per element with the per-channel factor precomputed (16 at a time with AVX-512). Quantisation as ONNX
/// defines it: round half to even, then add the zero point, saturate to [0, 255].
/// </summary>
internal static class QuantizedActivations
{
    /// <summary>True where the vector paths run (AVX-512 F, BW and VBMI): only then are these kernels faster than ONNX Runtime's.</summary>
    public static bool IsAccelerated => Avx512F.IsSupported && Avx512BW.IsSupported && Avx512Vbmi.IsSupported;

    /// <summary>What the vector paths need, for messages: "AVX-512 VBMI".</summary>
    public const string Requirement = "AVX-512 (F, BW, VBMI)";

    /// <summary>ONNX QuantizeLinear of <paramref name="value"/> to uint8: round(value / scale) half to even, plus the zero point, saturated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Quantize(float value, float scale, byte zeroPoint)
    {
        var q = MathF.Round(value / scale, MidpointRounding.ToEven) + zeroPoint;
        return (byte)Math.Clamp(q, 0f, 255f);
    }

    /// <summary>The SiLU table: entry q is <c>Q_y(x' * sigmoid(x'))</c> for <c>x' = (q - xZero) * xScale</c>, in float32 as ONNX Runtime's QLinearSigmoid builds its table.</summary>
    public static void SiluTable(float xScale, byte xZero, float yScale, byte yZero, Span<byte> table)
    {
        if (table.Length != 256) throw new ArgumentException("the table has 256 entries", nameof(table));
        for (var q = 0; q < 256; q++)
        {
            var x = (q - xZero) * xScale;
            table[q] = Quantize(x / (1f + MathF.Exp(-x)), yScale, yZero);
        }
    }

    /// <summary><c>destination[i] = table[source[i]]</c>.</summary>
    public static unsafe void Lookup(ReadOnlySpan<byte> source, Span<byte> destination, ReadOnlySpan<byte> table)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than source", nameof(destination));
        if (table.Length != 256) throw new ArgumentException("the table has 256 entries", nameof(table));
        var i = 0;
        fixed (byte* s = source, d = destination, t = table)
        {
            if (IsAccelerated && source.Length >= 64)
            {
                // vpermi2b looks up 7-bit indices in a 128-byte table held in two registers: one lookup per half of the
                // table, then each byte takes the half its top bit names.
                var t0 = Vector512.Load(t);
                var t1 = Vector512.Load(t + 64);
                var t2 = Vector512.Load(t + 128);
                var t3 = Vector512.Load(t + 192);
                var high = Vector512.Create((byte)0x80);
                for (; i <= source.Length - 64; i += 64)
                {
                    var index = Vector512.Load(s + i);
                    var low = Avx512Vbmi.PermuteVar64x8x2(t0, index, t1);
                    var top = Avx512Vbmi.PermuteVar64x8x2(t2, index, t3);
                    var useTop = Vector512.Equals(index & high, high);
                    Vector512.ConditionalSelect(useTop, top, low).Store(d + i);
                }
            }
            for (; i < source.Length; i++) d[i] = t[s[i]];
        }
    }

    /// <summary>
    /// The gate factors: <c>factor[n, c] = xScale * (g[n, c] - gZero) * gScale / yScale</c>, so that
    /// <c>y = round((x - xZero) * factor) + yZero</c>.
    /// </summary>
    public static void GateFactors(ReadOnlySpan<byte> gate, float xScale, float gScale, byte gZero, float yScale, Span<float> factors)
    {
        for (var i = 0; i < gate.Length; i++) factors[i] = xScale * ((gate[i] - gZero) * gScale) / yScale;
    }

    /// <summary>
    /// Scales <paramref name="pixels"/> pixels of <paramref name="channels"/> uint8 channels each (channels last) by
    /// one factor per channel: <c>y = sat(round((x - xZero) * factor[c]) + yZero)</c>.
    /// </summary>
    public static unsafe void ScaleChannels(ReadOnlySpan<byte> source, Span<byte> destination, int pixels, int channels, ReadOnlySpan<float> factors, byte xZero, byte yZero)
    {
        if (source.Length < pixels * channels || destination.Length < pixels * channels) throw new ArgumentException("buffers shorter than pixels x channels");
        if (factors.Length < channels) throw new ArgumentException("one factor per channel", nameof(factors));
        fixed (byte* s0 = source, d0 = destination)
        fixed (float* f = factors)
        {
            var vector = Avx512F.IsSupported ? channels - channels % 16 : 0;
            var xz = Vector512.Create((int)xZero);
            var yz = Vector512.Create((int)yZero);
            var lo = Vector512<int>.Zero;
            var hi = Vector512.Create(255);
            for (var p = 0; p < pixels; p++)
            {
                var s = s0 + (long)p * channels;
                var d = d0 + (long)p * channels;
                var c = 0;
                for (; c < vector; c += 16)
                {
                    var x = Avx512F.ConvertToVector512Int32(Vector128.Load(s + c)) - xz;
                    // Rounded to nearest even by the default MXCSR mode, as ONNX's QuantizeLinear rounds.
                    var q = Avx512F.ConvertToVector512Int32(Avx512F.ConvertToVector512Single(x) * Vector512.Load(f + c)) + yz;
                    Avx512F.ConvertToVector128Byte(Vector512.Min(Vector512.Max(q, lo), hi)).Store(d + c);
                }
                for (; c < channels; c++)
                {
                    var q = MathF.Round((s[c] - xZero) * f[c], MidpointRounding.ToEven) + yZero;
                    d[c] = (byte)Math.Clamp(q, 0f, 255f);
                }
            }
        }
    }
}
