using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FeatureOnnx.Runtime.Int8Kernels;

/// <summary>Which vector instructions the kernels use.</summary>
internal enum KernelTier
{
    /// <summary>None: the kernels are not used (ONNX Runtime's run instead).</summary>
    None,
    /// <summary>AVX2: the gate 8 lanes at a time; the SiLU table looked up one byte at a time (still one pass instead of two).</summary>
    Avx2,
    /// <summary>AVX-512 F, BW and VBMI: the SiLU table 64 bytes per pair of <c>vpermi2b</c>, the gate 16 lanes at a time.</summary>
    Avx512Vbmi,
}

/// <summary>
/// The two uint8 activations ONNX Runtime's CPU provider has no single kernel for, and which dominate an int8
/// EfficientNet: SiLU, <c>y = Q(x' * sigmoid(x'))</c> with <c>x' = DQ(x)</c>, which it runs as QLinearSigmoid then
/// QLinearMul (two passes over the map, and the sigmoid rounded to 8 bits in between), and the squeeze-excitation
/// gate, <c>y = Q(DQ(x) * DQ(g))</c> with g one value per image and channel, which its broadcasting QLinearMul runs
/// element by element. Here SiLU is one lookup in a 256-entry table and the gate one multiply per element with the
/// per-channel factor precomputed, vectorised as <see cref="Tier"/> allows. Quantisation as ONNX defines it: round half
/// to even, then add the zero point, saturate to [0, 255].
/// </summary>
internal static class QuantizedActivations
{
    /// <summary>
    /// What this CPU runs: <see cref="KernelTier.Avx512Vbmi"/> where it has AVX-512 F, BW and VBMI, else
    /// <see cref="KernelTier.Avx2"/>, else none. The environment variable <c>FEATUREONNX_INT8_KERNEL_TIER=avx2</c> (or
    /// <c>none</c>) asks for a lower tier than the CPU's, to measure a fallback on a machine that has more; it never
    /// raises it.
    /// </summary>
    public static KernelTier Tier { get; } = Detect();

    /// <summary>True where the kernels run (<see cref="Tier"/> is not none).</summary>
    public static bool IsAccelerated => Tier != KernelTier.None;

    /// <summary>What the kernels need, for messages.</summary>
    public const string Requirement = "AVX2 (AVX-512 VBMI for the vectorised SiLU table)";

    /// <summary>The tier for messages: "AVX-512 VBMI", "AVX2".</summary>
    public static string Describe(KernelTier tier) => tier switch
    {
        KernelTier.Avx512Vbmi => "AVX-512 VBMI",
        KernelTier.Avx2 => "AVX2",
        _ => "none",
    };

    private static KernelTier Detect()
    {
        var cpu = Avx512F.IsSupported && Avx512BW.IsSupported && Avx512Vbmi.IsSupported ? KernelTier.Avx512Vbmi
            : Avx2.IsSupported ? KernelTier.Avx2 : KernelTier.None;
        var asked = Environment.GetEnvironmentVariable("FEATUREONNX_INT8_KERNEL_TIER")?.Trim().ToLowerInvariant() switch
        {
            "none" => KernelTier.None,
            "avx2" => KernelTier.Avx2,
            _ => cpu,
        };
        return (KernelTier)Math.Min((int)cpu, (int)asked);
    }

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

    /// <summary><c>destination[i] = table[source[i]]</c>, at this CPU's <see cref="Tier"/>.</summary>
    public static void Lookup(ReadOnlySpan<byte> source, Span<byte> destination, ReadOnlySpan<byte> table) => Lookup(source, destination, table, Tier);

    /// <summary><c>destination[i] = table[source[i]]</c> at <paramref name="tier"/> (at most the CPU's).</summary>
    public static unsafe void Lookup(ReadOnlySpan<byte> source, Span<byte> destination, ReadOnlySpan<byte> table, KernelTier tier)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than source", nameof(destination));
        if (table.Length != 256) throw new ArgumentException("the table has 256 entries", nameof(table));
        var i = 0;
        fixed (byte* s = source, d = destination, t = table)
        {
            if (tier == KernelTier.Avx512Vbmi && source.Length >= 64)
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
            for (; i <= source.Length - 4; i += 4)
            {
                d[i] = t[s[i]];
                d[i + 1] = t[s[i + 1]];
                d[i + 2] = t[s[i + 2]];
                d[i + 3] = t[s[i + 3]];
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
    public static void ScaleChannels(ReadOnlySpan<byte> source, Span<byte> destination, int pixels, int channels, ReadOnlySpan<float> factors, byte xZero, byte yZero) =>
        ScaleChannels(source, destination, pixels, channels, factors, xZero, yZero, Tier);

    /// <summary>As above, at <paramref name="tier"/> (at most the CPU's).</summary>
    public static unsafe void ScaleChannels(ReadOnlySpan<byte> source, Span<byte> destination, int pixels, int channels, ReadOnlySpan<float> factors, byte xZero, byte yZero, KernelTier tier)
    {
        if (source.Length < pixels * channels || destination.Length < pixels * channels) throw new ArgumentException("buffers shorter than pixels x channels");
        if (factors.Length < channels) throw new ArgumentException("one factor per channel", nameof(factors));
        fixed (byte* s0 = source, d0 = destination)
        fixed (float* f = factors)
        {
            var wide = tier == KernelTier.Avx512Vbmi ? channels - channels % 16 : 0;
            var narrow = tier == KernelTier.Avx2 ? channels - channels % 8 : 0;
            var xz = Vector512.Create((int)xZero);
            var yz = Vector512.Create((int)yZero);
            var lo = Vector512<int>.Zero;
            var hi = Vector512.Create(255);
            var xz8 = Vector256.Create((int)xZero);
            var yz8 = Vector256.Create((int)yZero);
            var hi8 = Vector256.Create(255);
            for (var p = 0; p < pixels; p++)
            {
                var s = s0 + (long)p * channels;
                var d = d0 + (long)p * channels;
                var c = 0;
                for (; c < wide; c += 16)
                {
                    var x = Avx512F.ConvertToVector512Int32(Vector128.Load(s + c)) - xz;
                    // Rounded to nearest even by the default MXCSR mode, as ONNX's QuantizeLinear rounds.
                    var q = Avx512F.ConvertToVector512Int32(Avx512F.ConvertToVector512Single(x) * Vector512.Load(f + c)) + yz;
                    Avx512F.ConvertToVector128Byte(Vector512.Min(Vector512.Max(q, lo), hi)).Store(d + c);
                }
                for (; c < narrow; c += 8)
                {
                    var x = Avx2.ConvertToVector256Int32(s + c) - xz8;
                    // Rounded to nearest even by the default MXCSR mode, as ONNX's QuantizeLinear rounds.
                    var q = Avx.ConvertToVector256Int32(Avx.ConvertToVector256Single(x) * Vector256.Load(f + c)) + yz8;
                    var clamped = Vector256.Min(Vector256.Max(q, Vector256<int>.Zero), hi8);
                    // Both narrowings keep lane order; the values fit (0..255), so no saturation is needed.
                    var bytes = Vector256.Narrow(Vector256.Narrow(clamped, Vector256<int>.Zero), Vector256<short>.Zero);
                    *(ulong*)(d + c) = bytes.AsUInt64().ToScalar();
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
