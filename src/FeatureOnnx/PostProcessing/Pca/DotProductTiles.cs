using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FeatureOnnx.PostProcessing;

/// <summary>
/// The one SIMD kernel behind the covariance (X^T X) and the projection ((X - mean) W^T): a 4x4 tile of dot products
/// between four rows of A and four rows of B, kept in sixteen vector accumulators so each loaded vector feeds four
/// fused multiply-adds. Rows are float64, contiguous, zero-padded to a multiple of <see cref="Width"/>.
/// </summary>
internal static class DotProductTiles
{
    /// <summary>Doubles per vector: 8 where AVX-512 is accelerated, else <see cref="Vector{T}"/>'s (4 with AVX2, 2 with NEON).</summary>
    public static int Width => Vector512.IsHardwareAccelerated ? Vector512<double>.Count : Vector<double>.Count;

    /// <summary>The instruction set the kernel runs on, for logs.</summary>
    public static string Description => Vector512.IsHardwareAccelerated ? "Vector512 x8" : $"Vector<double> x{Vector<double>.Count}";

    /// <summary>Rounds <paramref name="n"/> up to a multiple of <paramref name="multiple"/>.</summary>
    public static int RoundUp(int n, int multiple) => (n + multiple - 1) / multiple * multiple;

    /// <summary>
    /// c[i*cStride + j] += dot(a + i*aStride, b + j*bStride) over <paramref name="length"/> elements, for i, j in 0..3.
    /// <paramref name="length"/> must be a multiple of <see cref="Width"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: skip tier-0 code
    public static unsafe void Tile4x4(double* a, nint aStride, double* b, nint bStride, int length, double* c, nint cStride)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Tile4x4Avx512(a, aStride, b, bStride, length, c, cStride);
            return;
        }
        Vector<double> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector<double> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector<double> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector<double> c30 = default, c31 = default, c32 = default, c33 = default;
        double* a0 = a, a1 = a + aStride, a2 = a + 2 * aStride, a3 = a + 3 * aStride;
        double* b0 = b, b1 = b + bStride, b2 = b + 2 * bStride, b3 = b + 3 * bStride;
        var w = Vector<double>.Count;
        for (var k = 0; k < length; k += w)
        {
            var x0 = Vector.Load(a0 + k);
            var x1 = Vector.Load(a1 + k);
            var x2 = Vector.Load(a2 + k);
            var x3 = Vector.Load(a3 + k);
            var y = Vector.Load(b0 + k);
            c00 = Vector.FusedMultiplyAdd(x0, y, c00);
            c10 = Vector.FusedMultiplyAdd(x1, y, c10);
            c20 = Vector.FusedMultiplyAdd(x2, y, c20);
            c30 = Vector.FusedMultiplyAdd(x3, y, c30);
            y = Vector.Load(b1 + k);
            c01 = Vector.FusedMultiplyAdd(x0, y, c01);
            c11 = Vector.FusedMultiplyAdd(x1, y, c11);
            c21 = Vector.FusedMultiplyAdd(x2, y, c21);
            c31 = Vector.FusedMultiplyAdd(x3, y, c31);
            y = Vector.Load(b2 + k);
            c02 = Vector.FusedMultiplyAdd(x0, y, c02);
            c12 = Vector.FusedMultiplyAdd(x1, y, c12);
            c22 = Vector.FusedMultiplyAdd(x2, y, c22);
            c32 = Vector.FusedMultiplyAdd(x3, y, c32);
            y = Vector.Load(b3 + k);
            c03 = Vector.FusedMultiplyAdd(x0, y, c03);
            c13 = Vector.FusedMultiplyAdd(x1, y, c13);
            c23 = Vector.FusedMultiplyAdd(x2, y, c23);
            c33 = Vector.FusedMultiplyAdd(x3, y, c33);
        }
        double* r0 = c, r1 = c + cStride, r2 = c + 2 * cStride, r3 = c + 3 * cStride;
        r0[0] += Vector.Sum(c00); r0[1] += Vector.Sum(c01); r0[2] += Vector.Sum(c02); r0[3] += Vector.Sum(c03);
        r1[0] += Vector.Sum(c10); r1[1] += Vector.Sum(c11); r1[2] += Vector.Sum(c12); r1[3] += Vector.Sum(c13);
        r2[0] += Vector.Sum(c20); r2[1] += Vector.Sum(c21); r2[2] += Vector.Sum(c22); r2[3] += Vector.Sum(c23);
        r3[0] += Vector.Sum(c30); r3[1] += Vector.Sum(c31); r3[2] += Vector.Sum(c32); r3[3] += Vector.Sum(c33);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile4x4Avx512(double* a, nint aStride, double* b, nint bStride, int length, double* c, nint cStride)
    {
        Vector512<double> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<double> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<double> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<double> c30 = default, c31 = default, c32 = default, c33 = default;
        double* a0 = a, a1 = a + aStride, a2 = a + 2 * aStride, a3 = a + 3 * aStride;
        double* b0 = b, b1 = b + bStride, b2 = b + 2 * bStride, b3 = b + 3 * bStride;
        var w = Vector512<double>.Count;
        for (var k = 0; k < length; k += w)
        {
            var x0 = Vector512.Load(a0 + k);
            var x1 = Vector512.Load(a1 + k);
            var x2 = Vector512.Load(a2 + k);
            var x3 = Vector512.Load(a3 + k);
            var y = Vector512.Load(b0 + k);
            c00 = Vector512.FusedMultiplyAdd(x0, y, c00);
            c10 = Vector512.FusedMultiplyAdd(x1, y, c10);
            c20 = Vector512.FusedMultiplyAdd(x2, y, c20);
            c30 = Vector512.FusedMultiplyAdd(x3, y, c30);
            y = Vector512.Load(b1 + k);
            c01 = Vector512.FusedMultiplyAdd(x0, y, c01);
            c11 = Vector512.FusedMultiplyAdd(x1, y, c11);
            c21 = Vector512.FusedMultiplyAdd(x2, y, c21);
            c31 = Vector512.FusedMultiplyAdd(x3, y, c31);
            y = Vector512.Load(b2 + k);
            c02 = Vector512.FusedMultiplyAdd(x0, y, c02);
            c12 = Vector512.FusedMultiplyAdd(x1, y, c12);
            c22 = Vector512.FusedMultiplyAdd(x2, y, c22);
            c32 = Vector512.FusedMultiplyAdd(x3, y, c32);
            y = Vector512.Load(b3 + k);
            c03 = Vector512.FusedMultiplyAdd(x0, y, c03);
            c13 = Vector512.FusedMultiplyAdd(x1, y, c13);
            c23 = Vector512.FusedMultiplyAdd(x2, y, c23);
            c33 = Vector512.FusedMultiplyAdd(x3, y, c33);
        }
        double* r0 = c, r1 = c + cStride, r2 = c + 2 * cStride, r3 = c + 3 * cStride;
        r0[0] += Vector512.Sum(c00); r0[1] += Vector512.Sum(c01); r0[2] += Vector512.Sum(c02); r0[3] += Vector512.Sum(c03);
        r1[0] += Vector512.Sum(c10); r1[1] += Vector512.Sum(c11); r1[2] += Vector512.Sum(c12); r1[3] += Vector512.Sum(c13);
        r2[0] += Vector512.Sum(c20); r2[1] += Vector512.Sum(c21); r2[2] += Vector512.Sum(c22); r2[3] += Vector512.Sum(c23);
        r3[0] += Vector512.Sum(c30); r3[1] += Vector512.Sum(c31); r3[2] += Vector512.Sum(c32); r3[3] += Vector512.Sum(c33);
    }
}
